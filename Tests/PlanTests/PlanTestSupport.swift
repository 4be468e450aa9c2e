import Diagnostics
import Foundation
import Plan
import Spec
import Testing

enum PlanSupport {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden").path
    static var recording: Bool { ProcessInfo.processInfo.environment["DISTILL_RECORD"] == "1" }

    /// Checks and plans a spec file (relative to the repository) with the documented default throughput.
    static func plan(_ path: String, variant: String? = nil) throws -> ExecutionPlan {
        let checked = try #require(SpecChecker.check(path: path, loader: SpecLoader(workingDirectory: repository), environment: [:]))
        #expect(!checked.diagnostics.hasErrors, "\(DiagnosticRenderer.text(checked.diagnostics))")
        let dir = ((repository as NSString).appendingPathComponent(path) as NSString).deletingLastPathComponent
        return Planner(throughput: .fallback, specDirectory: dir).plan(checked, variant: variant)
    }

    /// Plans an in-memory spec; `extends` resolves against `directory`.
    static func plan(text: String, name: String = "inline.yaml", directory: String = repository) throws -> ExecutionPlan {
        let checked = SpecChecker.check(source: SourceFile(displayPath: name, text: text), directory: directory)
        #expect(!checked.diagnostics.hasErrors, "\(DiagnosticRenderer.text(checked.diagnostics))")
        return Planner(throughput: .fallback, specDirectory: directory).plan(checked)
    }

    /// Spec stage name -> (train hash, evaluate hash) of one variant.
    static func hashes(_ plan: ExecutionPlan, variant: Int = 0) -> [String: String] {
        var out: [String: String] = [:]
        for s in plan.variants[variant].stages {
            out[s.name] = s.train
            out[s.name + "/evaluate"] = s.evaluate
        }
        return out
    }
}
