import ArgumentParser
import Diagnostics
import Foundation
import Plan
import Spec
import Storage

/// `distill check FILE|DIR...`: every problem of every spec, like a compiler.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check specs and print every error and warning with its location.",
        discussion: """
            Directories are searched for *.yaml and *.yml files. Exit status: 0 when every \
            spec is valid (warnings allowed), 1 when any has an error, 2 on a usage or I/O error.
            """)

    @Argument(help: "Spec files or directories.")
    var paths: [String]

    @Option(name: .long, help: "Output format: text or json.")
    var format: OutputFormat = .text

    @Option(name: .long, help: "A run store whose kept dataset fingerprints give `auto` values without reading the data again (used when it exists; check writes nothing).")
    var store: String = "runs"

    @Flag(name: .long, help: "Also read every voxel of each local dataset (NaN and infinite voxels, label values, truncated files), as prepare would, with its throughput on standard error.")
    var data = false

    enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    func run() throws {
        let fm = FileManager.default
        var files: [String] = []
        var ioErrors: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else {
                ioErrors.append("error: no such file or directory: '\(path)'")
                continue
            }
            files += isDirectory.boolValue ? SpecFiles.find(in: path) : [path]
        }
        var diagnostics: [Diagnostic] = []
        for file in files {
            guard let checked = SpecChecker.checkWithData(path: file, store: store, progress: SpecPlanning.progress) else {
                ioErrors.append("error: cannot read '\(file)'")
                continue
            }
            diagnostics += checked.diagnostics
            // The voxels of a spec whose headers already fail are not read: its errors come first.
            if data, !checked.diagnostics.hasErrors {
                let directory = FilePath.absolute(FilePath.folder(of: file), standardized: true)
                diagnostics += VoxelScanning.diagnostics(checked, specDirectory: directory)
            }
        }
        switch format {
        case .text:
            print(DiagnosticRenderer.text(diagnostics), terminator: "")
            print(DiagnosticRenderer.summary(diagnostics, files: files.count))
        case .json:
            print(DiagnosticRenderer.json(diagnostics, files: files.count), terminator: "")
        }
        for e in ioErrors { FileHandle.standardError.write(Data((e + "\n").utf8)) }
        if !ioErrors.isEmpty { throw ExitStatus.usage }
        if diagnostics.hasErrors { throw ExitStatus.failure }
    }
}

/// Finds spec files below a directory, in a stable order.
enum SpecFiles {
    static func find(in directory: String) -> [String] {
        let fm = FileManager.default
        guard let walker = fm.enumerator(atPath: directory) else { return [] }
        var found: [String] = []
        while let item = walker.nextObject() as? String {
            if item.hasSuffix(".yaml") || item.hasSuffix(".yml") {
                found.append((directory as NSString).appendingPathComponent(item))
            }
        }
        return found.sorted()
    }
}
