import Foundation

/// Files that are either wholly there or not at all: written beside their final
/// path under a temporary name, flushed to the disk, then renamed over it (rename
/// is atomic), and the folder flushed so that the rename itself survives a power
/// loss. A kill at any moment leaves the previous version or the new one, never a
/// mix; a failure (a full disk) leaves the previous version and no temporary.
///
/// Every step that changes the disk is a fault point (FaultInjection), so that a
/// test can stop the process at each in turn and check what it left.
public enum AtomicFile {
    /// The temporary beside `path`: hidden, and named by this process.
    public static func temporaryPath(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        return url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent)\(temporaryMarker)\(getpid())").path
    }

    /// What every temporary's name contains.
    public static let temporaryMarker = ".tmp-"

    /// Writes `data` to `path` atomically.
    public static func write(_ data: Data, to path: String) throws {
        try write(to: path) { tmp in
            try FaultInjection.point("write \(path)")
            // A fresh file: whatever is at the temporary's name (a killed process's leftover, a
            // planted link) is removed first, and a link that appears in between is not followed.
            unlink(tmp)
            let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw StorageError.system(errno, "cannot create \(tmp)") }
            defer { close(fd) }
            try data.withUnsafeBytes { try writeAll(fd, $0, path: path) }
        }
    }

    /// Makes `path` atomically from whatever `fill` writes to the temporary path it is
    /// given (a library that writes its own files, a streamed writer): the temporary is
    /// flushed and renamed into place, or removed when `fill` throws. `temporary`
    /// overrides the temporary's name (a library that reads meaning into an extension).
    public static func write(to path: String, temporary: String? = nil, _ fill: (String) throws -> Void) throws {
        let tmp = temporary ?? temporaryPath(for: path)
        do {
            try fill(tmp)
            let fd = open(tmp, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw StorageError.system(errno, "cannot reopen \(tmp)") }
            defer { close(fd) }
            // For a kill, the moment before the rename is the moment before the flush (the flush's fault point).
            try flush(fd, path: path)
            guard rename(tmp, path) == 0 else { throw StorageError.system(errno, "cannot move \(tmp) to \(path)") }
        } catch {
            unlink(tmp)
            throw error
        }
        flushDirectory(of: path)
    }

    /// Appends `text` to `path` (a log or a diary, never state a resume reads); a link at
    /// `path` is not followed (the append fails instead).
    public static func append(_ text: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StorageError.system(errno, "cannot open \(path) for appending") }
        defer { close(fd) }
        try Data(text.utf8).withUnsafeBytes { try writeAll(fd, $0, path: path) }
    }

    /// Writes all of `bytes` at the file's position, retrying short writes.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var done = 0
        while done < bytes.count {
            let n = Foundation.write(fd, bytes.baseAddress?.advanced(by: done), bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw StorageError.system(errno, "cannot write \(path)")
            }
            done += n
        }
    }

    /// Flushes a file's data to the disk; a full disk may only show here.
    public static func flush(_ fd: Int32, path: String) throws {
        try FaultInjection.point("flush \(path)", failure: StorageError.system(ENOSPC, "cannot write \(path)"))
        guard fsync(fd) == 0 else { throw StorageError.system(errno, "cannot write \(path)") }
    }

    /// Flushes a folder's entries (a rename is durable once its folder is).
    public static func flushDirectory(of path: String) {
        let fd = open(URL(fileURLWithPath: path).deletingLastPathComponent().path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }

    /// Removes the temporaries that killed processes left in `directory` and below it;
    /// returns their paths. Call it only while holding the folder's lock.
    @discardableResult
    public static func removeTemporaries(in directory: String) -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: directory) else { return [] }
        var removed: [String] = []
        while let relative = walker.nextObject() as? String {
            let name = (relative as NSString).lastPathComponent
            guard name.hasPrefix("."), name.contains(temporaryMarker) else { continue }
            let path = directory + "/" + relative
            if unlink(path) == 0 { removed.append(path) }
        }
        return removed
    }
}

/// A storage failure, named in words a user acts on.
public enum StorageError: Error, CustomStringConvertible, Equatable {
    /// errno and what was being done.
    case system(Int32, String)

    public var description: String {
        switch self {
        case .system(let code, let what) where code == ENOSPC || code == EDQUOT:
            return "\(what): no space left on the device (the previous version of the file, if any, is unchanged; free space and run again to resume)"
        case .system(let code, let what) where code == ELOOP:
            return "\(what): it is a symbolic link (a run store never holds one, and none is followed)"
        case .system(let code, let what):
            return "\(what): \(String(cString: strerror(code)))"
        }
    }

    public var isNoSpace: Bool {
        if case .system(let code, _) = self { return code == ENOSPC || code == EDQUOT }
        return false
    }
}
