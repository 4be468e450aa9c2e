import ArgumentParser
import Foundation
import Tensor

/// `--threads`, as every command that computes takes it: one spelling, one default
/// (all cores), one bound.
struct ThreadsOption: ParsableArguments {
    static let maximum = 1024

    @Option(name: .long, help: "Threads for kernels (default: all cores).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        guard (1...Self.maximum).contains(threads) else {
            throw ValidationError("--threads must be between 1 and \(Self.maximum), not \(threads)")
        }
    }

    /// Sets the kernels' thread count.
    func apply() { Parallel.setThreads(threads) }
}
