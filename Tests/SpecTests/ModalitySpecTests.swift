import Diagnostics
import Spec
import StageConfig
import Testing

/// `preprocess.modalities`, `normalize` and `channels`: their spec forms, the canonical
/// configuration they become, and located errors when they disagree.
@Suite struct ModalitySpecTests {
    static func spec(_ preprocess: String) -> String {
        """
        data:
          source: {phantom: {cases: 8, modalities: [CT, T1, T2]}}
          preprocess: \(preprocess)
        models:
          m: {arch: unet, widths: [4, 8], bottleneck: 8, in_channels: 2}
        stages:
          s: {model: m, data: full, loss: [{kind: dice}], optimizer: {kind: adam, lr: 0.001}, epochs: 1, batch: 2}

        """
    }

    func check(_ preprocess: String) -> CheckedSpec {
        SpecChecker.check(source: SourceFile(displayPath: "m.yaml", text: Self.spec(preprocess)))
    }

    @Test func oneNormalisationAppliesToEveryModality() throws {
        let checked = check("{size: 64, modalities: [T2, T1], normalize: {zscore: {mask: nonzero}}, channels: 2}")
        #expect(!checked.diagnostics.hasErrors, "\(DiagnosticRenderer.text(checked.diagnostics))")
        let p = try #require(checked.variants.first?.spec?.data.preprocess)
        #expect(p.modalities == ["T2", "T1"] && p.normalize == [.zscore(mask: .nonzero), .zscore(mask: .nonzero)] && p.planes == 2)
    }

    @Test func aListGivesOnePerModality() throws {
        let checked = check("{size: 64, modalities: [CT, T1], normalize: [{percentile: [0.5, 99.5]}, zscore], channels: 2}")
        #expect(!checked.diagnostics.hasErrors, "\(DiagnosticRenderer.text(checked.diagnostics))")
        let p = try #require(checked.variants.first?.spec?.data.preprocess)
        #expect(p.normalize == [.percentile(low: 0.5, high: 99.5), .zscore(mask: .all)])
        // The CT default is unchanged: the window.
        let ct = SpecChecker.check(source: SourceFile(displayPath: "c.yaml", text: Self.spec("{size: 64}").replacingOccurrences(of: ", in_channels: 2", with: "").replacingOccurrences(of: ", modalities: [CT, T1, T2]", with: "")))
        #expect(ct.variants.first?.spec?.data.preprocess.normalize == [.window])
    }

    @Test func disagreementsAreLocated() throws {
        let channels = try #require(check("{size: 64, modalities: [CT, T1, T2], channels: 2}").diagnostics.first { $0.id.code == "E0206" })
        #expect(channels.message == "3 modalities give 3 input channels, but channels is 2")
        #expect(channels.path == "data.preprocess.channels" && channels.fixIts.first?.replacement == "3")
        let count = try #require(check("{size: 64, modalities: [CT, T1], normalize: [zscore], channels: 2}").diagnostics.first { $0.id.code == "E0209" })
        #expect(count.message == "1 normalisation for 2 modalities" && count.path == "data.preprocess.normalize")
        let twice = try #require(check("{size: 64, modalities: [T1, T1], channels: 2}").diagnostics.first { $0.path == "data.preprocess.modalities" })
        #expect(twice.message == "a modality is listed twice in [T1, T1]")
        let percentile = try #require(check("{size: 64, modalities: [CT, T1], normalize: {percentile: [99, 1]}, channels: 2}").diagnostics.first {
            $0.path == "data.preprocess.normalize"
        })
        #expect(percentile.message == "the low percentile (99) must be below the high one (1)")
        #expect(check("{size: 64, normalize: {zscore: {}, percentile: [1, 99]}}").diagnostics.contains { $0.id.code == "E0208" })
    }

    @Test func thePhantomsModalitiesAreKnownAtCheckTime() throws {
        let unknown = try #require(check("{size: 64, modalities: [CT, T3], channels: 2}").diagnostics.first { $0.path == "data.preprocess.modalities[1]" })
        #expect(unknown.message.contains("'T3'") && unknown.fixIts.first?.replacement == "T1" || unknown.fixIts.first?.replacement == "T2")
        #expect(unknown.range?.startPosition.line == 3)
        let unchosen = try #require(check("{size: 64}").diagnostics.first { $0.path == "data.preprocess.modalities" })
        #expect(unchosen.message == "the phantom has 3 modalities (CT, T1, T2); say which become input channels")
    }
}
