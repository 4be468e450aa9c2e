import Diagnostics
import Spec
import StageConfig
import Testing

/// `data.foreground` as named classes: the heads, losses and logit terms that fit
/// them, and the located errors (with their fix-its) for those that do not.
@Suite struct ClassesTests {
    /// A three-organ study on the phantom; `{head}`, `{loss}` and `{logits}` are filled per case.
    static func spec(foreground: String = "{spleen: 1, liver: 2, kidney: 3}", head: Int = 4, loss: String = "dice_ce", logits: String = "kl") -> String {
        """
        data:
          source: {phantom: {cases: 8}}
          foreground: \(foreground)
          preprocess: {size: 64}
          subsets: {full: {fraction: 1.0}, half: {fraction: 0.5, of: full}}
        models:
          t: {arch: unet, widths: [8, 16], bottleneck: 16, heads: {segmentation: 4}}
          s: {arch: unet, widths: [4, 8], bottleneck: 8, convs_per_block: 1, heads: {segmentation: \(head)}}
        stages:
          teacher: {model: t, data: full, loss: [{kind: dice_ce}], optimizer: {kind: adamw, lr: 0.001}, epochs: 1, batch: 2}
          student:
            model: s
            data: half
            loss: [{kind: \(loss)}]
            optimizer: {kind: adamw, lr: 0.001}
            epochs: 1
            batch: 2
            distill: {teacher: teacher, logits: {kind: \(logits), temperature: 2}}

        """
    }

    func check(_ text: String) -> [Diagnostic] {
        SpecChecker.check(source: SourceFile(displayPath: "classes.yaml", text: text)).diagnostics
    }

    @Test func namedClassesWithSoftmaxHeadsAndLossesCheckClean() throws {
        let checked = SpecChecker.check(source: SourceFile(displayPath: "classes.yaml", text: Self.spec()))
        #expect(!checked.diagnostics.hasErrors, "\(DiagnosticRenderer.text(checked.diagnostics))")
        let data = try #require(checked.variants.first?.spec?.data)
        #expect(data.classes == LabelClasses.named([SegmentationClass(name: "spleen", values: [1]), SegmentationClass(name: "liver", values: [2]),
                                        SegmentationClass(name: "kidney", values: [3])]))
        #expect(data.classes.headChannels == [4])
        for loss in ["ce", "focal", "dice", "dice_ce"] {
            #expect(!check(Self.spec(loss: loss)).hasErrors, "\(loss) on a 4-channel head")
        }
    }

    @Test func binaryKLOnASoftmaxHeadIsAnErrorWithTheFixItKL() throws {
        let d = try #require(check(Self.spec(logits: "binary_kl")).first { $0.id.code == "E0406" })
        #expect(d.message.contains("'binary_kl' reads each of the 4 channels"))
        #expect(d.range?.startPosition.line == 18)
        #expect(d.fixIts.first?.replacement == "kl")
    }

    @Test func sigmoidLossesOnASoftmaxHeadPointToTheirSoftmaxCounterparts() throws {
        for (loss, replacement) in [("dice_bce", "dice_ce"), ("bce", "ce")] {
            let d = try #require(check(Self.spec(loss: loss)).first { $0.id.code == "E0406" })
            #expect(d.path == "stages.student.loss[0].kind")
            #expect(d.fixIts.first?.replacement == replacement)
        }
    }

    @Test func aHeadThatFitsNeitherSigmoidNorSoftmaxIsLocated() throws {
        let diagnostics = check(Self.spec(head: 2))
        let d = try #require(diagnostics.first { $0.id.code == "E0410" })
        #expect(d.message == "model 's': head 'segmentation' has 2 channels but data.foreground has 3 classes (spleen, liver, kidney)")
        #expect(d.range?.startPosition.line == 8)
        #expect(d.fixIts.first?.replacement == "4")
        // One class: a sigmoid head (1) and a softmax head with background (2) both fit; 3 does not.
        let oneClassSigmoid = check(Self.spec(foreground: "[1]", head: 1, loss: "dice", logits: "binary_kl"))
        #expect(!oneClassSigmoid.contains { $0.id.code == "E0410" && $0.message.contains("model 's'") })
        let oneClassThree = check(Self.spec(foreground: "{spleen: 1}", head: 3, loss: "ce", logits: "kl"))
        #expect(oneClassThree.contains { $0.id.code == "E0410" && $0.message.contains("model 's'") })
    }

    @Test func overlappingClassesAreRefused() throws {
        let d = try #require(check(Self.spec(foreground: "{core: [2, 3], enhancing: [3]}")).first { $0.id.code == "E0411" })
        #expect(d.message == "label value 3 is in both 'core' and 'enhancing'")
        #expect(d.range?.startPosition.line == 3)
    }

    @Test func classesEncodeInTheSpecsOrderAndMergedValuesAsTheyAlwaysWere() throws {
        let named = LabelClasses.named([SegmentationClass(name: "liver", values: [2]), SegmentationClass(name: "core", values: [2, 3].reversed())])
        #expect(named.json.canonical == #"[{"name":"liver","values":[2]},{"name":"core","values":[3,2]}]"#)
        #expect(named.problem == "label value 2 is in both 'liver' and 'core'")
        // The binary encoding is the old `foreground` list, so existing stage hashes are unchanged.
        #expect(LabelClasses.merged([1]).json.canonical == "[1]")
        let roundTrip = LabelClasses.named([SegmentationClass(name: "a", values: [1, 4]), SegmentationClass(name: "b", values: [2])])
        #expect(try LabelClasses(json: roundTrip.json) == roundTrip)
        #expect(throws: ConfigError.self) { try LabelClasses(json: .array([])) }
        #expect(roundTrip.indexOfValue == [1: 1, 4: 1, 2: 2])
        #expect(roundTrip.labelValue(ofClass: 1) == 1 && roundTrip.labelValue(ofClass: 2) == 2 && roundTrip.labelValue(ofClass: 0) == 0)
    }
}
