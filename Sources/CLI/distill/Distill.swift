import ArgumentParser
import Foundation

/// `distill`: knowledge-distillation studies for medical image segmentation, as data.
@main
struct Distill: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distill",
        abstract: "Check, plan and run knowledge-distillation studies written as YAML specs.",
        discussion: "Exit status: 0 success, 1 the spec or the run failed, 2 a usage or I/O error.",
        version: "0.1.0",
        subcommands: [CheckCommand.self, PlanCommand.self, CalibrateCommand.self, ParityCommand.self, BenchCommand.self, DataCommand.self,
                      RunCommand.self, SweepCommand.self, ReportCommand.self, StatusCommand.self, VerifyCommand.self, EvaluateCommand.self, SubmitCommand.self,
                      SchemaCommand.self, PredictCommand.self, ExportCommand.self])

    /// ArgumentParser exits 64 (EX_USAGE) for a bad flag; Distillery documents 2 for every usage error.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(ExitStatus.usage.rawValue)
            }
            exit(withError: error)
        }
    }
}

/// Exit statuses shared by every subcommand.
enum ExitStatus {
    /// The spec or the run failed.
    static let failure = ExitCode(1)
    /// Usage or I/O error.
    static let usage = ExitCode(2)
}
