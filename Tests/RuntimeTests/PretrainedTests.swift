import Architecture
import Diagnostics
import Foundation
import NN
import Runtime
import Spec
import StageConfig
import Tensor
import Testing

/// A teacher trained in PyTorch comes in through a weight file with rename rules:
/// the fixture is the thesis's S1 trained for 5 steps, saved with DataParallel's
/// `module.` prefix, the thesis code's module names and `num_batches_tracked`
/// (Pretrained/make_pytorch_teacher.py). Distillery's logits on a fixed input equal
/// PyTorch's.
@Suite struct PretrainedTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/Pretrained"
    static let weights = folder + "/thesis_s1_pytorch.safetensors"

    /// A spec extending Pretrained/teacher.yaml (the thesis code's names, renamed) with `overrides`.
    static func spec(_ overrides: String = "") -> String {
        "extends: \(folder)/teacher.yaml\n" + overrides
    }

    static func check(_ text: String) -> CheckedSpec {
        SpecChecker.check(source: SourceFile(displayPath: "pretrained.yaml", text: text))
    }

    @Test func pytorchLogitsAreReproducedAfterRenaming() throws {
        let checked = Self.check(Self.spec())
        #expect(!checked.diagnostics.hasErrors, "\(DiagnosticRenderer.text(checked.diagnostics))")
        let spec = try #require(checked.base)
        let stage = try #require(spec.pretrained.first)
        let arch = try #require(spec.model("thesis_s1")?.architecture)
        let model = ModelBuilder.build(arch, height: 64, width: 64, seed: 3)
        let report = try WeightImport.load(Self.weights, rules: stage.rename, into: model)
        #expect(report.loaded == 36)
        #expect(report.dropped.count == 5 && report.dropped.allSatisfy { $0.hasSuffix("num_batches_tracked") }, "\(report.dropped)")
        let io = try SafetensorsFile(path: Self.folder + "/thesis_s1_io.safetensors")
        let x = try io.tensor("in.x"), expected = try io.tensor("out.logits")
        let out = Tape.noGrad { model.forward(Variable(x), training: false) }
        let logits = try #require(out.logits["segmentation"]?.value)
        #expect(logits.shape == expected.shape)
        var worst: Float = 0, scale: Float = 0
        for i in 0..<expected.count {
            worst = max(worst, abs(logits.pointer[i] - expected.pointer[i]))
            scale = max(scale, abs(expected.pointer[i]))
        }
        // Float32 sums in another order: a few ulps of the largest logit.
        #expect(worst <= 1e-5 * max(1, scale), "max |Distillery - PyTorch| = \(worst) at logit scale \(scale)")
    }

    @Test func withoutRulesEveryNameIsListedInOneLocatedError() throws {
        let checked = Self.check(Self.spec("stages: {teacher: {weights: {rename: []}}}\n"))
        let errors = checked.diagnostics.filter { $0.id == SpecDiagnostics.weightsMismatch }
        #expect(errors.count == 1)
        let e = try #require(errors.first)
        #expect(e.range?.file.path == Self.folder + "/teacher.yaml" && e.range?.startPosition.line == 17, "\(DiagnosticRenderer.text([e]))")
        // 36 reference tensors missing, 36 of the file's unexpected (its 5 counters are skipped).
        #expect(e.message.hasSuffix("72 problems (36 missing, 36 unexpected)"), "\(e.message)")
        #expect(e.notes.contains { $0.message == "missing 'encoder.0.conv0.weight' [16, 1, 3, 3]" })
        #expect(e.notes.contains { $0.message == "unexpected 'module.b.bn.bias'" }, "\(DiagnosticRenderer.text([e]))")
    }

    @Test func aMisShapedTensorIsNamedWithBothShapes() throws {
        // Bottleneck 48 instead of 64: the bottleneck's conv and norm (6 tensors) and the deepest up-sampling, nothing else.
        let checked = Self.check(Self.spec("models: {thesis_s1: {bottleneck: 48}}\n"))
        let e = try #require(checked.diagnostics.first { $0.id == SpecDiagnostics.weightsMismatch })
        #expect(e.notes.contains { $0.message == "'module.b.conv.weight' (as 'bottleneck.conv0.weight') has shape [64, 32, 3, 3], the model expects [48, 32, 3, 3]" },
                "\(DiagnosticRenderer.text([e]))")
        #expect(e.message.hasSuffix("7 problems (7 mis-shaped or clashing)"), "\(e.message)")
    }

    @Test func badPatternsAndFilesAreLocated() throws {
        let bad = Self.check(Self.spec("stages: {teacher: {weights: {rename: [{regex: 'e(\\\\d+', to: 'x'}, {regex: 'a', to: '${1-x}'}]}}}\n"))
        let patterns = bad.diagnostics.filter { $0.id == SpecDiagnostics.badPattern }
        #expect(patterns.count == 2, "\(DiagnosticRenderer.text(bad.diagnostics))")
        let missing = Self.check(Self.spec("stages: {teacher: {weights: {file: no-such-file.safetensors}}}\n"))
        let e = try #require(missing.diagnostics.first { $0.id == SpecDiagnostics.unreadable })
        #expect(e.range?.startPosition.line == 2 && e.message.contains("cannot read the weights"))
        let notSafetensors = Self.check(Self.spec("stages: {teacher: {weights: {file: \(Self.folder)/make_pytorch_teacher.py}}}\n"))
        #expect(notSafetensors.diagnostics.contains { $0.id == SpecDiagnostics.unreadable }, "\(DiagnosticRenderer.text(notSafetensors.diagnostics))")
        let directory = Self.check(Self.spec("stages: {teacher: {weights: {file: \(Self.folder)}}}\n"))
        #expect(directory.diagnostics.contains { $0.id == SpecDiagnostics.unreadable && $0.message.hasSuffix("a directory, not a file") },
                "\(DiagnosticRenderer.text(directory.diagnostics))")
    }

    @Test func templatesShiftNumericGroups() throws {
        let header = try SafetensorsHeader(path: Self.weights)
        let rules: [WeightRename] = [.prefix("module.", to: ""), .regex(#"^e(\d+)\.conv\.conv\."#, to: "encoder.${1-1}.conv${1+1}.$$"),
                                     .drop(#"^(b|d\d|outputs)\."#), .drop(#"\.bn\."#)]
        let manifest = [WeightEntry(name: "encoder.0.conv2.$weight", shape: [16, 1, 3, 3], isBuffer: false)]
        let m = try WeightMapping(file: header, rules: rules, manifest: manifest)
        #expect(m.sources["encoder.0.conv2.$weight"] == "module.e1.conv.conv.weight")
        #expect(m.problems.contains("unexpected 'module.e2.conv.conv.weight' (as 'encoder.1.conv3.$weight')"), "\(m.problems)")
    }

    /// A long list is cut with examples of every kind of problem first, and the rest counted by kind.
    @Test func aCutListShowsEveryKindOfProblem() throws {
        let header = try SafetensorsHeader(path: Self.weights)
        let real = try #require(header.entries.keys.sorted().first)
        let manifest = (0..<50).map { WeightEntry(name: "absent.\($0).weight", shape: [1], isBuffer: false) }
            + [WeightEntry(name: real, shape: [7, 7, 7], isBuffer: false)]
        let m = try WeightMapping(file: header, rules: [], manifest: manifest)
        let unexpected = m.problems.filter { $0.hasPrefix("unexpected ") }.count  // the file's names but the batch counters
        #expect(m.tally == "50 missing, \(unexpected) unexpected, 1 mis-shaped or clashing")
        let (shown, rest) = m.examples(12)
        #expect(shown.count == 12)
        #expect(shown.contains { $0.hasPrefix("missing ") } && shown.contains { $0.hasPrefix("unexpected ") } && shown.contains { $0.contains("has shape") }, "\(shown)")
        #expect(rest == "and \(m.problems.count - 12) more (\(50 - shown.filter { $0.hasPrefix("missing ") }.count) missing, \(unexpected - shown.filter { $0.hasPrefix("unexpected ") }.count) unexpected)")
        #expect(m.summary.hasPrefix("\(m.problems.count) problems (50 missing, "))
    }
}
