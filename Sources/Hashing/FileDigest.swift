import Foundation

extension SHA256 {
    /// The digest of a file's bytes, read in 4 MiB pieces (weight files can be gigabytes); nil when unreadable.
    public static func file(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        var hasher = SHA256()
        do {
            // `read(upToCount:)` answers nil or empty data at the end of the file.
            while let chunk = try handle.read(upToCount: 4 << 20), !chunk.isEmpty { hasher.update([UInt8](chunk)) }
        } catch {
            return nil
        }
        return hasher.finalize()
    }
}
