import Architecture
import Diagnostics
import StageConfig

/// A pretrained stage's weight file, checked before anything runs: the file is a
/// safetensors file, every rename pattern compiles, and the renamed tensors are
/// exactly the model's weight manifest with its shapes. Only the header is read.
enum WeightChecks {
    static let rules: [@Sendable (Spec) -> [Diagnostic]] = [weightFiles]

    static func weightFiles(_ spec: Spec) -> [Diagnostic] {
        var out: [Diagnostic] = []
        for p in spec.pretrained {
            let base = "stages.\(p.name).weights"
            let fileRange = p.source["weights"]?.range(of: "file")
            var patternsCompile = true
            for (i, rule) in p.rename.enumerated() {
                guard let pattern = rule.pattern else { continue }
                do {
                    _ = try Regex(pattern)
                } catch {
                    patternsCompile = false
                    let key = rule.patternKey
                    let item = p.source["weights"]?["rename"]?.list[safe: i]
                    out.append(Diagnostic(SpecDiagnostics.badPattern, "'\(pattern)' is not a regular expression: \(error)",
                                          at: item?.range(of: key), path: "\(base).rename[\(i)].\(key)"))
                }
            }
            for (i, rule) in p.rename.enumerated() {
                guard case .regex(_, let to) = rule, let problem = WeightMapping.templateProblem(to) else { continue }
                patternsCompile = false
                out.append(Diagnostic(SpecDiagnostics.badPattern, problem, at: p.source["weights"]?["rename"]?.list[safe: i]?.range(of: "to"),
                                      path: "\(base).rename[\(i)].to"))
            }
            guard patternsCompile, let model = spec.model(p.model.name) else { continue }
            let header: SafetensorsHeader
            do {
                header = try SafetensorsHeader(path: p.resolvedFile)
            } catch {
                out.append(Diagnostic(SpecDiagnostics.unreadable, "cannot read the weights: \(error)", at: fileRange, path: "\(base).file",
                                      notes: [DiagnosticNote("the file is read relative to the spec that names it: \(p.resolvedFile)")]))
                continue
            }
            let manifest = model.architecture.weightManifest(height: spec.data.height, width: spec.data.width)
            do {
                let mapping = try WeightMapping(file: header, rules: p.rename, manifest: manifest)
                guard !mapping.problems.isEmpty else { continue }
                let (examples, rest) = mapping.examples(40)
                let shown = examples.map { DiagnosticNote($0) }
                let more = rest.map { [DiagnosticNote($0)] } ?? []
                out.append(Diagnostic(SpecDiagnostics.weightsMismatch,
                    "the weights in '\(p.file)' do not fit model '\(model.name)' (\(model.architecture.summary)): \(mapping.problems.count) problem\(mapping.problems.count == 1 ? "" : "s") (\(mapping.tally))",
                    at: fileRange, path: "\(base).file",
                    notes: shown + more + [DiagnosticNote("model '\(model.name)' holds \(manifest.count) tensors named like '\(manifest.first?.name ?? "")'; `rename` rewrites the file's names into these")]))
            } catch {
                out.append(Diagnostic(SpecDiagnostics.badPattern, "a rename pattern does not compile: \(error)", at: p.source["weights"]?.range(of: "rename"),
                                      path: "\(base).rename"))
            }
        }
        return out
    }
}

extension WeightRename {
    /// The key that holds the rule's pattern.
    var patternKey: String {
        if case .drop = self { return "drop" }
        return "regex"
    }
}
