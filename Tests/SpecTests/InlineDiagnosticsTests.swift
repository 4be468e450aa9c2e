import Diagnostics
import Spec
import Testing

/// Small cases written inline, with `1️⃣` marking where the diagnostic must point
/// (swift-syntax's marker style).
@Suite struct InlineDiagnosticsTests {
    static let base = """
        data:
          source: {phantom: {}}
          preprocess: {size: 64}
        models:
          t: {arch: multitask_unet, widths: [8, 16, 32], bottleneck: 64, heads: {segmentation: 1, reconstruction: 1}}
          s: {arch: unet, widths: [4, 8], bottleneck: 16, convs_per_block: 1}

        """

    /// Checks `source` (with one marker) and returns the diagnostics plus the marker's 1-based position.
    func check(_ marked: String) -> (diagnostics: [Diagnostic], marker: SourcePosition) {
        let marker = "1️⃣"
        let text = Self.base + marked
        let offset = text.utf8.count - (text.components(separatedBy: marker).last?.utf8.count ?? 0) - marker.utf8.count
        let clean = text.replacingOccurrences(of: marker, with: "")
        let file = SourceFile(displayPath: "inline.yaml", text: clean)
        let checked = SpecChecker.check(source: file)
        return (checked.diagnostics, file.position(of: offset))
    }

    func expectDiagnostic(_ marked: String, _ code: String, _ message: String,
                          sourceLocation: SourceLocation = #_sourceLocation) {
        let (diagnostics, marker) = check(marked)
        let match = diagnostics.first { $0.id.code == code && $0.range?.startPosition == marker }
        #expect(match != nil, "no \(code) at \(marker) among \(diagnostics.map { "\($0.id.code)@\($0.range?.startPosition ?? SourcePosition(line: 0, column: 0))" })",
                sourceLocation: sourceLocation)
        #expect(match?.message == message, sourceLocation: sourceLocation)
    }

    @Test func unknownTapPointsAtTheTapAndSuggests() {
        expectDiagnostic("""
            stages:
              t: {model: t, data: full, loss: [{kind: dice}], optimizer: {kind: adamw, lr: 0.001}, epochs: 1, batch: 2}
              s:
                model: s
                data: full
                loss: [{kind: dice}]
                optimizer: {kind: adamw, lr: 0.001}
                epochs: 1
                batch: 2
                distill:
                  teacher: t
                  taps:
                    ee: {teacher: pool.1, student: 1️⃣pool.3, adapter: {}}
            """, "E0203", "unknown tap 'pool.3' of student model 's'")
        let (d, _) = check("""
            stages:
              t: {model: t, data: full, loss: [{kind: dice}], optimizer: {kind: adamw, lr: 0.001}, epochs: 1, batch: 2}
              s: {model: s, data: full, loss: [{kind: dice}], optimizer: {kind: adamw, lr: 0.001}, epochs: 1, batch: 2,
                  distill: {teacher: t, taps: {ee: {teacher: pool.1, student: 1️⃣pooll.1, adapter: {}}}}}
            """)
        let tap = d.first { $0.id.code == "E0203" }
        #expect(tap?.fixIts.first?.replacement == "pool.1")
        #expect(tap?.notes.first?.message.contains("input, encoder.0, pool.0, encoder.1, pool.1, bottleneck, decoder.0, decoder.1, logits.segmentation") == true)
    }

    @Test func columnsCountUnicodeScalars() {
        expectDiagnostic("""
            evaluate: {pooling: glöbal, threshold_on: 1️⃣lögit}
            """, "E0205", "'lögit' is not one of 'probability', 'logit'")
    }

    @Test func quotedNumberIsAString() {
        expectDiagnostic("""
            stages:
              t: {model: t, data: full, loss: [{kind: dice}], optimizer: {kind: adamw, lr: 1️⃣"0.1"}, epochs: 1, batch: 2}
            """, "E0202", "expected a number, found the quoted string \"0.1\"")
    }

    @Test func allErrorsAtOnce() {
        let (d, _) = check("""
            stages:
              t: {model: tt, data: ful, loss: [{kind: dice}], optimizer: {kind: adamw, lr: -1}, epochs: 0, batch: 2, sed: 1}
            1️⃣
            """)
        #expect(Set(d.map(\.id.code)) == ["E0206", "E0201"])  // the invalid stage is not also checked for references
        #expect(d.count == 3)
    }

    @Test func referencesAreCheckedOnceTheStageIsValid() {
        let (d, _) = check("""
            stages:
              t: {model: tt, data: ful, loss: [{kind: dice}], optimizer: {kind: adamw, lr: 1}, epochs: 1, batch: 2}
            1️⃣
            """)
        #expect(d.map(\.id.code) == ["E0301", "E0302"])
        #expect(d.first?.fixIts.first?.replacement == "t")
        #expect(d.last?.fixIts.first?.replacement == "full")
    }
}
