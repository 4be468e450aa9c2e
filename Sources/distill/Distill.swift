import ArgumentParser

/// `distill`: knowledge-distillation studies for medical image segmentation, as data.
@main
struct Distill: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distill",
        abstract: "Check, plan and run knowledge-distillation studies written as YAML specs.",
        version: "0.1.0",
        subcommands: [CheckCommand.self, PlanCommand.self, CalibrateCommand.self, ParityCommand.self, BenchCommand.self, DataCommand.self, RunCommand.self, SweepCommand.self, ReportCommand.self, StatusCommand.self, EvaluateCommand.self, SubmitCommand.self, SchemaCommand.self])
}

/// Exit statuses shared by every subcommand.
enum ExitStatus {
    /// The spec or the run failed.
    static let failure = ExitCode(1)
    /// Usage or I/O error.
    static let usage = ExitCode(2)
}
