import Foundation

/// Where the golden fixtures live in the source tree (recording writes there).
enum Fixtures {
    static let directory: String = {
        let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        return here.appendingPathComponent("Fixtures").path
    }()

    static let repository: String = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }()

    /// `DISTILL_RECORD=1 swift test` rewrites expected outputs; the run then fails
    /// so that nobody records by accident.
    static var recording: Bool { ProcessInfo.processInfo.environment["DISTILL_RECORD"] == "1" }

    static func files(in sub: String, ext: String) -> [String] {
        let dir = (directory as NSString).appendingPathComponent(sub)
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])
            .filter { $0.hasSuffix(".\(ext)") }.sorted()
    }
}
