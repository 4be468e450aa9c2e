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

    /// The stage folder, relative to the store's root (what `ConfinedTree` takes).
    func folder(_ hash: String) -> String {
        _ = directory(hash)  // checks the hash
        return "stages/\(hash)"
    }

    /// The stage's output files, relative to its folder, sorted. A symbolic link in the
    /// folder is an error: a stage writes files, never links, and none is followed.
    func outputs(_ hash: String) throws -> [String] {
        if let link = tree.symlinks(under: folder(hash)).first {
            throw RuntimeError.io("\(root)/\(link) is a symbolic link: a stage folder holds only the files its stage wrote")
        }
        return regularFiles(hash).filter { !Self.isBookkeeping($0) }
    }

    /// Every regular file in the stage folder and below it, relative to the folder (links are not entered).
    func regularFiles(_ hash: String) -> [String] {
        let base = folder(hash)
        return tree.entries(under: base).filter { $0.kind == .file }.map { String($0.path.dropFirst(base.count + 1)) }.sorted()
    }

    /// Marks a stage done: its summary, the machine that made it, and the size and digest
    /// of every output. Written last, atomically: until it exists the stage is not done.
    func markDone(_ hash: String, summary: [String: JSON]) throws {
        var outputs: [JSON] = []
        for relative in try self.outputs(hash) {
            let (digest, bytes) = try SHA256.fileDigest(file(hash, relative))
            outputs.append(.object(["file": .string(relative), "bytes": .int(bytes), "sha256": .string(digest)]))
        }
        var record = summary
        record["outputs"] = .array(outputs)
        record["machine"] = Provenance.current.json
        try AtomicFile.write(Data(JSON.object(record).pretty.utf8), to: file(hash, "done"))
        unlink(file(hash, "damaged"))
    }

    /// One way a stage folder differs from its record.
    public enum Damage: Error, Equatable, Sendable, CustomStringConvertible {
        case missing(String)
        case size(String, recorded: Int, found: Int)
        case digest(String)
        case unreadable(String, String)
        /// A symbolic link where a file or folder of the stage should be (relative to the stage
        /// folder; "" for the stage folder itself).
        case symlink(String)
        /// The done record is unreadable, empty, or lacks what a record holds.
        case record(String)
        /// The done record names a path outside the stage folder.
        case unsafeName(String)
        /// A file that is neither in the done record nor a bookkeeping file.
        case unexpected(String)

        /// The file to remove when the stage is set aside (nil: nothing may be removed for it).
        public var removable: String? {
            switch self {
            case .size(let f, _, _), .digest(let f), .unreadable(let f, _), .unexpected(let f): return f
            case .symlink(let f): return f.isEmpty ? nil : f
            case .missing, .record, .unsafeName: return nil
            }
        }

        public var description: String {
            switch self {
            case .missing(let f): return "\(f) is missing"
            case .size(let f, let recorded, let found): return "\(f) has \(found) bytes, \(recorded) when it was written"
            case .digest(let f): return "\(f) does not match the SHA-256 recorded when it was written"
            case .unreadable(let f, let why): return "\(f) cannot be read (\(why))"
            case .symlink(let f) where f.isEmpty: return "the stage folder is a symbolic link (a store never holds one, and none is followed)"
            case .symlink(let f): return "\(f) is a symbolic link (a store never holds one, and none is followed)"
            case .record(let why): return "its done record \(why)"
            case .unsafeName(let f): return "its done record names '\(f)', a path outside the stage folder"
            case .unexpected(let f): return "\(f) is neither in the done record nor a bookkeeping file"
            }
        }
    }

    public enum Integrity: Equatable, Sendable {
        case intact(files: Int, bytes: Int)
        case damaged([Damage])
        /// Not done.
        case notDone
    }

    /// A stage's done record, read strictly: every output with a name inside the folder,
    /// its size and its digest.
    struct DoneRecord {
        var fields: [String: JSON]
        var outputs: [(file: String, bytes: Int, sha256: String)]
    }

    /// The done record, when there is a valid one; `.damaged` when there is a `done` that is
    /// not one (unreadable, empty, a link, without outputs): never "done, unchecked".
    enum RecordState {
        case absent
        case valid(DoneRecord)
        case damaged([Damage])
    }

    func record(_ hash: String) -> RecordState {
        switch tree.kind(folder(hash) + "/done") {
        case (.missing, _): return .absent
        case (.symlink, let at): return .damaged([.symlink(at == folder(hash) ? "" : String(at.dropFirst(folder(hash).count + 1)))])
        case (.file, _): break
        case (.directory, _), (.other, _): return .damaged([.record("is not a file")])
        }
        // The scheduler asks every tick: a record is parsed again only when its file changed.
        var info = stat()
        let identity = lstat(file(hash, "done"), &info) == 0
            ? RecordCache.Identity(inode: UInt64(info.st_ino), size: Int64(info.st_size), modified: info.st_mtim.tv_sec, nanoseconds: info.st_mtim.tv_nsec) : nil
        if let identity, let cached = records.lookup(hash, identity) { return cached }
        let data: Data
        do {
            data = try tree.read(folder(hash) + "/done")
        } catch {
            return .damaged([.record("cannot be read (\(error))")])
        }
        let state = parse(data)
        if let identity { records.store(hash, identity, state) }
        return state
    }

    /// A done record's bytes, read strictly.
    private func parse(_ data: Data) -> RecordState {
        guard !data.isEmpty else { return .damaged([.record("is empty")]) }
        guard let fields = JSON.parse(data)?.object else { return .damaged([.record("is not a JSON object")]) }
        guard let list = fields["outputs"]?.array else { return .damaged([.record("lists no outputs")]) }
        var outputs: [(String, Int, String)] = [], problems: [Damage] = []
        for o in list {
            guard let name = o["file"]?.string, let size = o["bytes"]?.int, let digest = o["sha256"]?.string,
                  size >= 0, digest.count == 64, digest.allSatisfy(\.isHexDigit) else {
                problems.append(.record("has an output entry without a file, a size and a SHA-256"))
                continue
            }
            guard ConfinedTree.isSafeName(name), !Self.isBookkeeping(name) else {
                problems.append(.unsafeName(name))
                continue
            }
            outputs.append((name, size, digest))
        }
        return problems.isEmpty ? .valid(DoneRecord(fields: fields, outputs: outputs)) : .damaged(problems)
    }

    /// Whether the stage has a `done` entry at all (valid or not) or a linked folder: what
    /// a run must check before it reuses or reruns the stage.
    public func claimsDone(_ hash: String) -> Bool {
        if tree.kind(folder(hash)).kind == .symlink { return true }
        if case .absent = record(hash) { return false }
        return true
    }

    /// Checks a done stage against its record (reads every byte): every output's size and
    /// digest, no symbolic link anywhere in the folder, no file that is neither an output nor
    /// bookkeeping.
    public func verify(_ hash: String) -> Integrity {
        if tree.kind(folder(hash)).kind == .symlink { return .damaged([.symlink("")]) }
        let record: DoneRecord
        switch self.record(hash) {
        case .absent:
            let links = tree.symlinks(under: folder(hash))
            return links.isEmpty ? .notDone : .damaged(links.map { .symlink(String($0.dropFirst(folder(hash).count + 1))) })
        case .damaged(let problems): return .damaged(problems)
        case .valid(let r): record = r
        }
        var problems: [Damage] = [], bytes = 0
        let base = folder(hash)
        let recorded = Set(record.outputs.map(\.file))
        // One walk of the folder: links are damage, and so are files neither recorded nor bookkeeping.
        for entry in tree.entries(under: base) {
            let name = String(entry.path.dropFirst(base.count + 1))
            if entry.kind == .symlink { problems.append(.symlink(name)) }
            if entry.kind == .file, !recorded.contains(name), !Self.isBookkeeping(name) { problems.append(.unexpected(name)) }
        }
        for o in record.outputs {
            switch check(hash, o) {
            case .success(let size): bytes += size
            case .failure(let damage): if !problems.contains(damage) { problems.append(damage) }
            }
        }
        return problems.isEmpty ? .intact(files: record.outputs.count, bytes: bytes) : .damaged(problems)
    }

    /// One recorded output against its size and digest, read without following a link.
    private func check(_ hash: String, _ o: (file: String, bytes: Int, sha256: String)) -> Result<Int, Damage> {
        switch tree.kind(folder(hash) + "/" + o.file) {
        case (.missing, _): return .failure(.missing(o.file))
        case (.symlink, let at): return .failure(.symlink(String(at.dropFirst(folder(hash).count + 1))))
        case (.directory, _), (.other, _): return .failure(.unreadable(o.file, "not a file"))
        case (.file, _): break
        }
        let path = file(hash, o.file)
        var s = stat()
        guard lstat(path, &s) == 0 else { return .failure(.missing(o.file)) }
        guard Int(s.st_size) == o.bytes else { return .failure(.size(o.file, recorded: o.bytes, found: Int(s.st_size))) }
        do {
            return try SHA256.fileDigest(path).digest == o.sha256 ? .success(o.bytes) : .failure(.digest(o.file))
        } catch {
            return .failure(.unreadable(o.file, "\(error)"))
        }
    }

    /// The path of output `name` of a done stage, once its size and digest match the record:
    /// what every command that reads a stage's outputs goes through. Throws naming the stage
    /// and the file otherwise.
    public func verifiedFile(_ hash: String, _ name: String) throws -> String {
        let record: DoneRecord
        switch self.record(hash) {
        case .absent: throw RuntimeError.damaged(stage: hash, "is not finished (no done record)")
        case .damaged(let problems): throw RuntimeError.damaged(stage: hash, problems.map(\.description).joined(separator: "; "))
        case .valid(let r): record = r
        }
        if tree.kind(folder(hash)).kind == .symlink { throw RuntimeError.damaged(stage: hash, Damage.symlink("").description) }
        guard let o = record.outputs.first(where: { $0.file == name }) else {
            throw RuntimeError.damaged(stage: hash, "its done record does not list \(name)")
        }
        if case .failure(let damage) = check(hash, o) { throw RuntimeError.damaged(stage: hash, damage.description) }
        return file(hash, name)
    }

    /// Sets a damaged stage aside: its `done` becomes `damaged` (with what was found), so
    /// the stage is no longer reused and runs again, and the damaged files are removed (a
    /// resume must not start from them); a link is removed itself, never what it points to,
    /// and a name from the record that points outside the folder is never touched. The
    /// intact files stay: they matched their digests.
    func quarantine(_ hash: String, _ problems: [Damage]) throws {
        let base = folder(hash)
        if problems.contains(.symlink("")) || tree.kind(base).kind == .symlink {
            try tree.remove(base)
            try Self.createFolder(directory(hash))
        }
        for p in problems { if let f = p.removable { try tree.remove(base + "/" + f) } }
        // Without a valid record no output can be told good from bad: the stage starts over.
        if case .damaged = record(hash) {
            for f in regularFiles(hash) where !Self.isBookkeeping(f) { try tree.remove(base + "/" + f) }
        }
        let previous: JSON
        if case .file = tree.kind(base + "/done").kind, let data = try? tree.read(base + "/done") { previous = JSON.parse(data) ?? .null } else { previous = .null }
        let record = JSON.object(["problems": .array(problems.map { .string($0.description) }), "done": previous,
                                  "found": .string(ISO8601DateFormatter().string(from: Date()))])
        try tree.remove(base + "/damaged")
        try AtomicFile.write(Data(record.pretty.utf8), to: file(hash, "damaged"))
        try tree.remove(base + "/done")
    }

    /// What `quarantine` found, if the stage is set aside and not yet run again.
    public func damage(_ hash: String) -> [String]? {
        guard case .file = tree.kind(folder(hash) + "/damaged").kind, let data = try? tree.read(folder(hash) + "/damaged") else { return nil }
        return JSON.parse(data)?["problems"]?.array?.compactMap(\.string)
    }
}

/// Done records already read, by stage, with the identity of the file they were read from
/// (inode, size, modification time): a changed or replaced file is read again.
final class RecordCache: @unchecked Sendable {
    struct Identity: Equatable {
        var inode: UInt64, size: Int64, modified: Int, nanoseconds: Int
    }

    private var entries: [String: (Identity, RunStore.RecordState)] = [:]
    private let lock = NSLock()

    func lookup(_ hash: String, _ identity: Identity) -> RunStore.RecordState? {
        lock.lock()
        defer { lock.unlock() }
        guard let (kept, state) = entries[hash], kept == identity else { return nil }
        return state
    }

    func store(_ hash: String, _ identity: Identity, _ state: RunStore.RecordState) {
        lock.lock()
        entries[hash] = (identity, state)
        lock.unlock()
    }
}
