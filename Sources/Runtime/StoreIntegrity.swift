import Foundation
import Hashing
import StageConfig
import Storage

/// What a stage left, and whether it is still what it left: its `done` record
/// lists every output file with its size and SHA-256 (Nix's and Bazel's way), and a
/// stage is reused only when they still match.
extension RunStore {
    /// Files of a stage folder that are bookkeeping, not results: they change after
    /// the stage is done (a lock, a log a later run appends to, Slurm's files), or that
    /// hold wall times, so that no rerun writes them alike (the TensorBoard curves).
    static func isBookkeeping(_ relative: String) -> Bool {
        let name = (relative as NSString).lastPathComponent
        return ["done", "damaged", "lock", "log.txt", "slurm.json", TensorBoardRuns.fileName].contains(relative)
            || (name.hasPrefix("slurm-") && name.hasSuffix(".out"))
            || (name.hasPrefix(".") && name.contains(AtomicFile.temporaryMarker))
    }

    /// The stage's output files, relative to its folder, sorted.
    func outputs(_ hash: String) -> [String] {
        let dir = directory(hash)
        guard let walker = FileManager.default.enumerator(atPath: dir) else { return [] }
        var files: [String] = []
        while let relative = walker.nextObject() as? String {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: dir + "/" + relative, isDirectory: &isDirectory), !isDirectory.boolValue,
                  !Self.isBookkeeping(relative) else { continue }
            files.append(relative)
        }
        return files.sorted()
    }

    /// Marks a stage done: its summary, and the size and digest of every output. Written
    /// last, atomically: until it exists the stage is not done.
    func markDone(_ hash: String, summary: [String: JSON]) throws {
        var outputs: [JSON] = []
        for relative in self.outputs(hash) {
            let (digest, bytes) = try SHA256.fileDigest(file(hash, relative))
            outputs.append(.object(["file": .string(relative), "bytes": .int(bytes), "sha256": .string(digest)]))
        }
        var record = summary
        record["outputs"] = .array(outputs)
        try AtomicFile.write(Data(JSON.object(record).pretty.utf8), to: file(hash, "done"))
        unlink(file(hash, "damaged"))
    }

    /// One way an output differs from its record.
    public enum Damage: Equatable, Sendable, CustomStringConvertible {
        case missing(String)
        case size(String, recorded: Int, found: Int)
        case digest(String)
        case unreadable(String, String)

        public var file: String {
            switch self {
            case .missing(let f), .size(let f, _, _), .digest(let f), .unreadable(let f, _): return f
            }
        }

        public var description: String {
            switch self {
            case .missing(let f): return "\(f) is missing"
            case .size(let f, let recorded, let found): return "\(f) has \(found) bytes, \(recorded) when it was written"
            case .digest(let f): return "\(f) does not match the SHA-256 recorded when it was written"
            case .unreadable(let f, let why): return "\(f) cannot be read (\(why))"
            }
        }
    }

    public enum Integrity: Equatable, Sendable {
        case intact(files: Int, bytes: Int)
        case damaged([Damage])
        /// Done before Distillery recorded digests: nothing to compare with.
        case unrecorded
        /// Not done.
        case notDone
    }

    /// Checks every output of a done stage against its record (reads every byte).
    public func verify(_ hash: String) -> Integrity {
        guard let record = FileManager.default.contents(atPath: file(hash, "done")).flatMap(JSON.parse) else { return .notDone }
        guard let outputs = record["outputs"]?.array else { return .unrecorded }
        var problems: [Damage] = [], bytes = 0
        for o in outputs {
            guard let name = o["file"]?.string, let size = o["bytes"]?.int, let digest = o["sha256"]?.string else {
                problems.append(.unreadable("done", "an output entry without file, bytes and sha256"))
                continue
            }
            let path = file(hash, name)
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else {
                problems.append(.missing(name))
                continue
            }
            let found = (attributes[.size] as? NSNumber)?.intValue ?? -1
            guard found == size else {
                problems.append(.size(name, recorded: size, found: found))
                continue
            }
            do {
                if try SHA256.fileDigest(path).digest != digest { problems.append(.digest(name)) }
            } catch {
                problems.append(.unreadable(name, "\(error)"))
            }
            bytes += size
        }
        return problems.isEmpty ? .intact(files: outputs.count, bytes: bytes) : .damaged(problems)
    }

    /// Sets a damaged stage aside: its `done` becomes `damaged` (with what was found), so
    /// the stage is no longer reused and runs again, and the damaged files are removed (a
    /// resume must not start from them). The intact ones stay: they matched their digests.
    func quarantine(_ hash: String, _ problems: [Damage]) throws {
        for p in problems where p.file != "done" { unlink(file(hash, p.file)) }
        let previous = FileManager.default.contents(atPath: file(hash, "done")).flatMap(JSON.parse) ?? .null
        let record = JSON.object(["problems": .array(problems.map { .string($0.description) }), "done": previous,
                                  "found": .string(ISO8601DateFormatter().string(from: Date()))])
        try AtomicFile.write(Data(record.pretty.utf8), to: file(hash, "damaged"))
        guard unlink(file(hash, "done")) == 0 || errno == ENOENT else {
            throw RuntimeError.io("cannot set aside \(file(hash, "done")): \(String(cString: strerror(errno)))")
        }
    }

    /// What `quarantine` found, if the stage is set aside and not yet run again.
    public func damage(_ hash: String) -> [String]? {
        FileManager.default.contents(atPath: file(hash, "damaged")).flatMap(JSON.parse)?["problems"]?.array?.compactMap(\.string)
    }
}
