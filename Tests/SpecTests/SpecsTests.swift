import Diagnostics
import Foundation
import Spec
import Testing

/// The specs in specs/ are product: they stay valid and say what the study did.
@Suite struct SpecsTests {
    func check(_ path: String) throws -> CheckedSpec {
        try #require(SpecChecker.check(path: path, loader: SpecLoader(workingDirectory: Fixtures.repository), environment: [:]))
    }

    @Test(arguments: ["specs/quickstart.yaml", "specs/phantom-study.yaml", "specs/thesis/study.yaml", "specs/thesis/ablation.yaml", "specs/reproduce-thesis-bugs.yaml"])
    func specIsValid(_ path: String) throws {
        let checked = try check(path)
        #expect(!checked.diagnostics.hasErrors, "\(DiagnosticRenderer.text(checked.diagnostics))")
    }

    @Test func quickstartSweepsTwoScaleSets() throws {
        let checked = try check("specs/quickstart.yaml")
        #expect(checked.variants.map(\.name) == ["scales=logits", "scales=multiscale"])
        #expect(checked.variants.allSatisfy { $0.spec != nil })
    }

    @Test func ablationGridExpands() throws {
        // teacher 2 x student 2 x scales 4 x feature loss 3 x optimiser 3
        let checked = try check("specs/thesis/ablation.yaml")
        #expect(checked.variants.count == 144)
        #expect(checked.variants.first?.name == "teacher=t1,student=s1,scales=ee+bb+dd+pmd,feature_loss=infonce-0.4,optimizer=rmsprop")
        let t2 = try #require(checked.variants.first { $0.name.hasPrefix("teacher=t2") }?.spec?.stage("kd"))
        #expect(t2.distill?.teacher.name == "teacher_t2")
        #expect(t2.distill?.taps.first { $0.name == "ee" }?.teacher.name == "encoder.0")
    }

    @Test func reproducingTheStudyWarnsOfEachDefect() throws {
        let checked = try check("specs/reproduce-thesis-bugs.yaml")
        let codes = Set(checked.diagnostics.map(\.id.code))
        #expect(codes == ["W0502", "W0503", "W0504", "W0507", "W0508"])
    }

    @Test func mainSpecsHaveNoWarnings() throws {
        for path in ["specs/quickstart.yaml", "specs/phantom-study.yaml", "specs/thesis/study.yaml", "specs/thesis/ablation.yaml"] {
            #expect(try check(path).diagnostics.isEmpty, "\(path)")
        }
    }
}
