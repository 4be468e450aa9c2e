import ArgumentParser
import Foundation
import Parity
import Tensor

/// `distill parity DIR...`: the runtime against reference tensors.
struct ParityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parity",
        abstract: "Compare the runtime with reference tensors (safetensors cases) and print PASS or FAIL per case.",
        discussion: "Reads every *.safetensors file in the given folders or files (the format of shared/reference). Exit 1 if any case fails.")

    @Argument(help: "Folders or files of reference cases.")
    var paths: [String]

    @OptionGroup var threading: ThreadsOption

    @Flag(name: .long, help: "List every compared tensor, not only failing ones.")
    var verbose = false

    func run() throws {
        threading.apply()
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                FileHandle.standardError.write(Data("error: no such file or directory: '\(path)'\n".utf8))
                throw ExitStatus.usage
            }
            if isDirectory.boolValue {
                let items = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
                files += items.filter { $0.hasSuffix(".safetensors") }.sorted().map { (path as NSString).appendingPathComponent($0) }
            } else {
                files.append(path)
            }
        }
        guard !files.isEmpty else {
            FileHandle.standardError.write(Data("error: no .safetensors cases in \(paths.joined(separator: ", "))\n".utf8))
            throw ExitStatus.usage
        }
        var failed = 0, runs = 0
        let width = (files.map { (($0 as NSString).lastPathComponent as NSString).deletingPathExtension.count }.max() ?? 10) + 9
        // Every case as the runtime runs it; the cases with convolutions again with each fast algorithm
        // forced (the direct kernel where this CPU has AVX2 with FMA or AVX-512, Winograd everywhere).
        var checks: [(file: String, convolutions: ConvAlgorithm?)] = files.map { ($0, nil) }
        let convolutional = files.filter { ReferenceParity.usesConvolutions(path: $0) }
        for algorithm in [ConvAlgorithm.direct, .winograd] where algorithm != .direct || DirectConvolution.isAvailable {
            checks += convolutional.map { ($0, algorithm) }
        }
        for (file, convolutions) in checks {
            let r = ReferenceParity.run(path: file, convolutions: convolutions)
            runs += 1
            let label = r.name + (convolutions.map { " [\($0.rawValue)]" } ?? "")
            let name = label.padding(toLength: max(width, label.count), withPad: " ", startingAt: 0)
            if r.passed {
                print("PASS  \(name)  \(r.op.padding(toLength: 26, withPad: " ", startingAt: 0))  max abs \(fmt(r.maxAbs))  max rel \(fmt(r.maxRel))  (\(r.comparisons.count) tensors)")
            } else {
                failed += 1
                print("FAIL  \(name)  \(r.op)\(r.error.map { ": \($0)" } ?? "")")
            }
            for t in r.comparisons where verbose || !t.passed {
                print("      \(t.passed ? "ok  " : "FAIL") \(t.name): max abs \(fmt(t.maxAbs)), max rel \(fmt(t.maxRel))\(t.note.map { " (\($0))" } ?? "")")
            }
        }
        print("\(runs - failed) passed, \(failed) failed")
        if failed > 0 { throw ExitStatus.failure }
    }

    private func fmt(_ v: Float) -> String { v.isFinite ? String(format: "%.2e", v) : "inf" }
}
