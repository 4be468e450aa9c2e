import Foundation

/// The process's peak resident memory (Linux's VmHWM), reset before a stage runs so that
/// what is read after it is that stage's peak: what the store records beside the stage's
/// time, for the plan's memory figure to be checked against.
public enum PeakMemory {
    /// Resets the peak to the current resident memory (`clear_refs` 5); false where the kernel does not allow it.
    @discardableResult
    public static func reset() -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? handle.close() }
        do { try handle.write(contentsOf: Data("5".utf8)) } catch { return false }
        return true
    }

    /// Peak resident bytes since the last reset (or since the process began), nil where unknown.
    public static func peakBytes() -> Int? { field("VmHWM:") }

    /// Resident bytes now.
    public static func currentBytes() -> Int? { field("VmRSS:") }

    private static func field(_ name: String) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix(name) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count >= 2, let kib = Int(fields[1]) { return kib * 1024 }
        }
        return nil
    }
}
