import Foundation

/// A folder tree whose root is trusted and whose contents are not: a run store, whose
/// root the user named, and whose files anybody with write access could have replaced.
/// Below the root, no symbolic link is followed: names read from records are checked
/// before use, every folder on a path is opened with O_NOFOLLOW, and a link found where
/// a file or folder should be is reported, never read or written through.
public struct ConfinedTree: Sendable {
    public let root: String

    public init(root: String) { self.root = root }

    /// Whether `relative` names something inside the tree: not empty, not absolute, no
    /// empty, `.` or `..` component, no NUL. A name read from a record that fails this is
    /// damage, never a path.
    public static func isSafeName(_ relative: String) -> Bool {
        guard !relative.isEmpty, !relative.hasPrefix("/"), !relative.contains("\0") else { return false }
        return relative.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." }
    }

    /// What is at `relative` (not following a final link).
    public enum Kind: Equatable, Sendable {
        case missing, file, directory, symlink, other
    }

    /// The kind of the entry at `relative`, and the first component on the way that is
    /// a link (or not a folder) when there is one: a path through a link is `symlink`.
    public func kind(_ relative: String) -> (kind: Kind, at: String) {
        var path = root, walked: [Substring] = []
        let components = relative.split(separator: "/")
        for (i, c) in components.enumerated() {
            path += "/" + c
            walked.append(c)
            var s = stat()
            guard lstat(path, &s) == 0 else { return (.missing, walked.joined(separator: "/")) }
            let mode = s.st_mode & S_IFMT
            if mode == S_IFLNK { return (.symlink, walked.joined(separator: "/")) }
            if i < components.count - 1 {
                guard mode == S_IFDIR else { return (.other, walked.joined(separator: "/")) }
            } else {
                return (mode == S_IFDIR ? .directory : mode == S_IFREG ? .file : .other, relative)
            }
        }
        return (.directory, relative)
    }

    /// Every entry in the folder `relative` and below it, relative to the root, with its kind,
    /// sorted; folders reached through a link are not entered.
    public func entries(under relative: String) -> [(path: String, kind: Kind)] {
        var found: [(String, Kind)] = []
        func walk(_ folder: String) {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: root + "/" + folder) else { return }
            for name in names.sorted() {
                let entry = folder + "/" + name
                var s = stat()
                guard lstat(root + "/" + entry, &s) == 0 else { continue }
                switch s.st_mode & S_IFMT {
                case S_IFLNK: found.append((entry, .symlink))
                case S_IFREG: found.append((entry, .file))
                case S_IFDIR:
                    found.append((entry, .directory))
                    walk(entry)
                default: found.append((entry, .other))
                }
            }
        }
        if kind(relative).kind == .directory { walk(relative) }
        return found
    }

    /// Every symbolic link in the folder `relative` and below it, relative to the root.
    public func symlinks(under relative: String) -> [String] {
        entries(under: relative).filter { $0.kind == .symlink }.map(\.path)
    }

    /// Opens the folder `relative` through folders only (each opened with O_NOFOLLOW), or
    /// throws naming the component that is a link or missing.
    func openFolder(_ components: [Substring]) throws -> Int32 {
        var fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw StorageError.system(errno, "cannot open \(root)") }
        var walked = root
        for c in components {
            walked += "/" + c
            let next = openat(fd, String(c), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            let reason = errno
            close(fd)
            guard next >= 0 else { throw StorageError.system(reason == ELOOP || reason == ENOTDIR ? ELOOP : reason, "cannot open \(walked)") }
            fd = next
        }
        return fd
    }

    /// Removes the entry `relative` (a file, or a link itself, never what it points to)
    /// without following a link on the way. A missing entry is not an error.
    public func remove(_ relative: String) throws {
        guard Self.isSafeName(relative) else { throw StorageError.system(EINVAL, "refusing to remove '\(relative)' from \(root)") }
        var components = relative.split(separator: "/")
        let name = String(components.removeLast())
        let folder: Int32
        do {
            folder = try openFolder(components)
        } catch StorageError.system(let code, _) where code == ENOENT {
            return
        }
        defer { close(folder) }
        guard unlinkat(folder, name, 0) == 0 || errno == ENOENT else { throw StorageError.system(errno, "cannot remove \(root)/\(relative)") }
    }

    /// The bytes of the file `relative`, read without following a link anywhere below the root.
    public func read(_ relative: String) throws -> Data {
        guard Self.isSafeName(relative) else { throw StorageError.system(EINVAL, "refusing to read '\(relative)' from \(root)") }
        var components = relative.split(separator: "/")
        let name = String(components.removeLast())
        let folder = try openFolder(components)
        defer { close(folder) }
        let fd = openat(folder, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw StorageError.system(errno == ELOOP ? ELOOP : errno, "cannot read \(root)/\(relative)") }
        defer { close(fd) }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw StorageError.system(errno, "cannot read \(root)/\(relative)")
            }
            if n == 0 { break }
            data.append(contentsOf: buffer[0..<n])
        }
        return data
    }
}
