/// One source text and its line table: the only place where byte offsets
/// become 1-based line:column positions.
///
/// Columns count Unicode scalars, as editors do, so a caret under `ü` or `µ`
/// lands where the user sees the character.
public final class SourceFile: Sendable {
    /// The path as the user should see it (relative to where they ran the command).
    public let displayPath: String
    /// The raw bytes, exactly as read; offsets in `SourceRange` index into these.
    public let bytes: [UInt8]
    /// Byte offset at which each line starts; `lineStarts[0] == 0`.
    public let lineStarts: [Int]

    /// Where the file is on disk, absolute (nil for text that was never a file):
    /// paths written inside a spec resolve against its folder.
    public let path: String?

    public init(displayPath: String, bytes: [UInt8], path: String? = nil) {
        self.displayPath = displayPath
        self.path = path
        self.bytes = bytes
        var starts = [0]
        for (i, b) in bytes.enumerated() where b == UInt8(ascii: "\n") {
            starts.append(i + 1)
        }
        self.lineStarts = starts
    }

    public convenience init(displayPath: String, text: String) {
        self.init(displayPath: displayPath, bytes: Array(text.utf8))
    }

    /// A 1-based line and column (in Unicode scalars) for a byte offset.
    public func position(of offset: Int) -> SourcePosition {
        let clamped = max(0, min(offset, bytes.count))
        // Binary search for the last line start <= offset.
        var lo = 0, hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= clamped { lo = mid } else { hi = mid - 1 }
        }
        let lineStart = lineStarts[lo]
        return SourcePosition(line: lo + 1, column: scalarCount(from: lineStart, to: clamped) + 1)
    }

    /// The byte offset of a 0-based line and a 0-based column counted in Unicode
    /// scalars (libyaml's marks are in that form).
    public func offset(line: Int, scalarColumn: Int) -> Int {
        guard line < lineStarts.count else { return bytes.count }
        var offset = lineStarts[line]
        var remaining = scalarColumn
        while remaining > 0, offset < bytes.count, bytes[offset] != UInt8(ascii: "\n") {
            offset += 1
            while offset < bytes.count, bytes[offset] & 0xC0 == 0x80 { offset += 1 }
            remaining -= 1
        }
        return offset
    }

    /// The text of a 1-based line, without its line break.
    public func lineText(_ line: Int) -> String {
        guard line >= 1, line <= lineStarts.count else { return "" }
        let start = lineStarts[line - 1]
        var end = line < lineStarts.count ? lineStarts[line] - 1 : bytes.count
        if end > start, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        return String(decoding: bytes[start..<max(start, end)], as: UTF8.self)
    }

    /// The source text covered by a byte range.
    public func text(_ start: Int, _ end: Int) -> String {
        let s = max(0, min(start, bytes.count)), e = max(s, min(end, bytes.count))
        return String(decoding: bytes[s..<e], as: UTF8.self)
    }

    private func scalarCount(from start: Int, to end: Int) -> Int {
        var n = 0
        for i in start..<end where bytes[i] & 0xC0 != 0x80 { n += 1 }
        return n
    }
}

/// A 1-based line and column.
public struct SourcePosition: Hashable, Sendable, Comparable {
    public var line: Int
    public var column: Int
    public init(line: Int, column: Int) { self.line = line; self.column = column }
    public static func < (a: SourcePosition, b: SourcePosition) -> Bool {
        (a.line, a.column) < (b.line, b.column)
    }
}

/// A half-open byte range `[start, end)` in one source file.
public struct SourceRange: Sendable {
    public let file: SourceFile
    public let start: Int
    public let end: Int

    public init(file: SourceFile, start: Int, end: Int) {
        self.file = file
        self.start = start
        self.end = max(start, end)
    }

    public var startPosition: SourcePosition { file.position(of: start) }
    public var endPosition: SourcePosition { file.position(of: end) }
    /// The text the range covers.
    public var text: String { file.text(start, end) }
}

extension SourceRange: Hashable {
    public static func == (a: SourceRange, b: SourceRange) -> Bool {
        a.file === b.file && a.start == b.start && a.end == b.end
    }
    public func hash(into h: inout Hasher) {
        h.combine(ObjectIdentifier(file)); h.combine(start); h.combine(end)
    }
}
