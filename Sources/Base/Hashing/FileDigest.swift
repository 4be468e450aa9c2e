import Foundation

extension SHA256 {
    public mutating func update(_ data: Data) {
        data.withUnsafeBytes { update($0) }
    }

    /// The digest of a file's bytes, read in 4 MiB pieces (weight files and teacher
    /// caches can be gigabytes); nil when unreadable.
    public static func file(_ path: String) -> String? {
        try? fileDigest(path).digest
    }

    /// The digest and size of a file; throws when it cannot be opened or read.
    public static func fileDigest(_ path: String) throws -> (digest: String, bytes: Int) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileDigestError(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var hasher = SHA256()
        let size = 4 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
        defer { buffer.deallocate() }
        var total = 0
        while true {
            let n = read(fd, buffer.baseAddress, size)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileDigestError(path: path, reason: String(cString: strerror(errno)))
            }
            if n == 0 { break }
            hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            total += n
        }
        return (hasher.finalize(), total)
    }
}

/// A file that could not be read to its end.
public struct FileDigestError: Error, CustomStringConvertible {
    public var path: String
    public var reason: String
    public var description: String { "cannot read \(path): \(reason)" }
}
