import Architecture
import Foundation

/// What can be wrong with a safetensors file; every case names the file.
public enum SafetensorsError: Error, CustomStringConvertible, Equatable {
    case unreadable(String)
    case truncated(String, detail: String)
    case badHeader(String, detail: String)
    case unsupportedDType(String, tensor: String, dtype: String)
    case missing(String, tensor: String)
    case wrongShape(String, tensor: String, expected: [Int], found: [Int])

    public var description: String {
        switch self {
        case .unreadable(let f): return "\(f): cannot read the file"
        case .truncated(let f, let d): return "\(f): truncated safetensors file: \(d)"
        case .badHeader(let f, let d): return "\(f): not a safetensors file: \(d)"
        case .unsupportedDType(let f, let t, let d):
            return "\(f): tensor '\(t)' has dtype \(d); \(SafetensorsHeader.widths.keys.sorted().joined(separator: ", ")) are supported"
        case .missing(let f, let t): return "\(f): no tensor '\(t)'"
        case .wrongShape(let f, let t, let e, let s): return "\(f): tensor '\(t)' has shape \(s), expected \(e)"
        }
    }
}

/// A safetensors file's header: 8-byte little-endian length, then a JSON object of
/// `name: {dtype, shape, data_offsets}` (and `__metadata__`). The one reader of the
/// format's header: the runtime's tensor reader and the checker's look at weight
/// files both use it.
public struct SafetensorsHeader: Sendable {
    public struct Entry: Hashable, Sendable {
        public var dtype: String
        public var shape: [Int]
        /// Byte range within the data that follows the header.
        public var range: Range<Int>
    }

    /// Bytes per element of each dtype read (floats are widened to Float32).
    public static let widths: [String: Int] = ["F32": 4, "F16": 2, "BF16": 2, "I32": 4, "I64": 8]

    public let entries: [String: Entry]
    public let metadata: [String: String]
    /// Where the tensor data starts in the file.
    public let dataStart: Int

    /// Parses the header from the file's first bytes; `fileSize` bounds the data.
    public init(prefix bytes: Data, fileSize: Int, path: String) throws {
        guard bytes.count >= 8 else { throw SafetensorsError.truncated(path, detail: "\(fileSize) bytes, no header length") }
        let n = bytes.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard n <= UInt64(fileSize - 8) else {
            throw SafetensorsError.truncated(path, detail: "header of \(n) bytes but only \(fileSize - 8) follow")
        }
        dataStart = 8 + Int(n)
        guard bytes.count >= dataStart else { throw SafetensorsError.truncated(path, detail: "the header ends early") }
        let start = bytes.startIndex
        guard let header = JSON.parse(bytes.subdata(in: start + 8..<start + dataStart))?.object else {
            throw SafetensorsError.badHeader(path, detail: "the header is not a JSON object")
        }
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        let payload = fileSize - dataStart
        for (name, value) in header {
            if name == "__metadata__" {
                for (k, v) in value.object ?? [:] { metadata[k] = v.string }
                continue
            }
            guard let dtype = value["dtype"]?.string, let shape = value["shape"]?.array?.compactMap(\.int),
                  shape.count == value["shape"]?.array?.count, let offsets = value["data_offsets"]?.array?.compactMap(\.int),
                  offsets.count == 2, offsets[0] >= 0, offsets[0] <= offsets[1] else {
                throw SafetensorsError.badHeader(path, detail: "entry '\(name)' lacks dtype, shape or data_offsets")
            }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw SafetensorsError.badHeader(path, detail: "entry '\(name)' has a negative dimension") }
            guard offsets[1] <= payload else {
                throw SafetensorsError.truncated(path, detail: "tensor '\(name)' ends at byte \(offsets[1]) of \(payload)")
            }
            guard let width = Self.widths[dtype] else { throw SafetensorsError.unsupportedDType(path, tensor: name, dtype: dtype) }
            let (elements, overflow) = shape.reduce((1, false)) { acc, d in
                let (p, o) = acc.0.multipliedReportingOverflow(by: d)
                return (p, acc.1 || o)
            }
            guard !overflow, elements.multipliedReportingOverflow(by: width).partialValue == offsets[1] - offsets[0] else {
                throw SafetensorsError.badHeader(path, detail: "tensor '\(name)' of shape \(shape) \(dtype) needs \(elements &* width) bytes, has \(offsets[1] - offsets[0])")
            }
            entries[name] = Entry(dtype: dtype, shape: shape, range: offsets[0]..<offsets[1])
        }
        self.entries = entries
        self.metadata = metadata
    }

    /// Reads only the header of the file at `path` (a teacher's weights may be gigabytes).
    public init(path: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw SafetensorsError.badHeader(path, detail: "a directory, not a file")
        }
        guard let handle = FileHandle(forReadingAtPath: path) else { throw SafetensorsError.unreadable(path) }
        defer { try? handle.close() }
        let size = Int((try? handle.seekToEnd()) ?? 0)
        try? handle.seek(toOffset: 0)
        let first = (try? handle.read(upToCount: 8)) ?? Data()
        guard first.count == 8 else { throw SafetensorsError.truncated(path, detail: "\(size) bytes, no header length") }
        let n = first.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard n <= UInt64(max(0, size - 8)), n < 1 << 30 else {
            throw SafetensorsError.truncated(path, detail: "header of \(n) bytes but only \(size - 8) follow")
        }
        let rest = (try? handle.read(upToCount: Int(n))) ?? Data()
        try self.init(prefix: first + rest, fileSize: size, path: path)
    }
}

/// One rewrite of a weight file's tensor names, from PyTorch module names to the
/// reference's (`encoder.0.conv0.weight`). Rules apply in order, each to the name
/// the previous ones produced.
public enum WeightRename: Hashable, Sendable, ConfigCodable {
    /// A name starting with `prefix` gets `to` instead.
    case prefix(String, to: String)
    /// Every match of the regular expression is replaced; `$1`… insert groups.
    case regex(String, to: String)
    /// Names matching the regular expression are not loaded (optimiser state, counters).
    case drop(String)

    /// Every key present, the unused ones null (the shape the spec's completed document has).
    public var json: JSON {
        var o: [String: JSON] = ["prefix": .null, "regex": .null, "drop": .null, "to": .null]
        switch self {
        case .prefix(let p, let to): (o["prefix"], o["to"]) = (.string(p), .string(to))
        case .regex(let r, let to): (o["regex"], o["to"]) = (.string(r), .string(to))
        case .drop(let r): o["drop"] = .string(r)
        }
        return .object(o)
    }

    public init(json: JSON, at path: String) throws {
        self = try ConfigReader.read(json, at: path, declaration: Self.declaration) { r in
            let prefix = try r.optional("prefix") { r, k in try r.string(k) }
            let regex = try r.optional("regex") { r, k in try r.string(k) }
            let drop = try r.optional("drop") { r, k in try r.string(k) }
            let to = try r.optional("to") { r, k in try r.string(k) }
            switch (prefix, regex, drop, to) {
            case (let p?, nil, nil, let to?): return .prefix(p, to: to)
            case (nil, let re?, nil, let to?): return .regex(re, to: to)
            case (nil, nil, let d?, nil): return .drop(d)
            default:
                throw ConfigError(field: path, problem: .inconsistent("a rename rule is `prefix` or `regex` with `to`, or `drop` alone"), value: json)
            }
        }
    }

    /// The pattern of a regex or drop rule, for checking that it compiles.
    public var pattern: String? {
        switch self {
        case .prefix: return nil
        case .regex(let r, _), .drop(let r): return r
        }
    }
}

/// How a weight file's tensors become a model's: the file's names rewritten by the
/// rules, then matched against the architecture's weight manifest. Every missing,
/// unexpected and mis-shaped name is reported at once.
public struct WeightMapping: Sendable {
    /// Manifest name -> the file's tensor name.
    public var sources: [String: String] = [:]
    /// File names a `drop` rule removed, and PyTorch's `num_batches_tracked` counters.
    public var dropped: [String] = []
    public var problems: [String] = []

    /// PyTorch's BatchNorm step counter: a state-dict entry with no effect on the network's output.
    public static func isBatchCounter(_ name: String) -> Bool { name.hasSuffix(".num_batches_tracked") || name == "num_batches_tracked" }

    public init(file: SafetensorsHeader, rules: [WeightRename], manifest: [WeightEntry]) throws {
        let compiled = try rules.map { rule -> (WeightRename, Regex<AnyRegexOutput>?) in
            (rule, try rule.pattern.map { try Regex($0) })
        }
        var renamed: [String: String] = [:]  // target -> source
        for source in file.entries.keys.sorted() {
            var name: String? = source
            for (rule, regex) in compiled {
                guard let current = name else { break }
                switch rule {
                case .prefix(let p, let to):
                    if current.hasPrefix(p) { name = to + current.dropFirst(p.count) }
                case .regex(_, let template):
                    if let regex { name = current.replacing(regex) { match in Self.expand(template, match) } }
                case .drop:
                    if let regex, current.contains(regex) { name = nil }
                }
            }
            guard let target = name, !Self.isBatchCounter(target) else {
                dropped.append(source)
                continue
            }
            if let other = renamed[target] {
                problems.append("'\(other)' and '\(source)' both become '\(target)'")
                continue
            }
            renamed[target] = source
        }
        for entry in manifest {
            guard let source = renamed.removeValue(forKey: entry.name) else {
                problems.append("missing '\(entry.name)' \(entry.shape)")
                continue
            }
            let found = file.entries[source]
            if let found, found.shape != entry.shape {
                let shown = source == entry.name ? "'\(source)'" : "'\(source)' (as '\(entry.name)')"
                problems.append("\(shown) has shape \(found.shape), the model expects \(entry.shape)")
            } else if let dtype = found?.dtype, !["F32", "F16", "BF16"].contains(dtype) {
                problems.append("'\(source)' holds \(dtype) values, not floats")
            } else {
                sources[entry.name] = source
            }
        }
        for (target, source) in renamed.sorted(by: { $0.value < $1.value }) {
            problems.append(source == target ? "unexpected '\(source)'" : "unexpected '\(source)' (as '\(target)')")
        }
    }

    /// `$1`… in `template` replaced by the match's groups; `${1-1}` or `${2+1}` shift a
    /// numeric group (PyTorch code often counts modules from 1: `e1` is level 0);
    /// `$$` is a dollar sign. A group that did not match inserts nothing.
    static func expand(_ template: String, _ match: Regex<AnyRegexOutput>.Match) -> String {
        var out = ""
        var chars = Array(template)[...]
        func group(_ i: Int) -> String? { i < match.output.count ? match.output[i].substring.map(String.init) : nil }
        while let c = chars.popFirst() {
            guard c == "$", let next = chars.first else { out.append(c); continue }
            if next == "$" { chars.removeFirst(); out.append("$"); continue }
            if next == "{", let close = chars.firstIndex(of: "}") {
                let body = String(chars[chars.index(after: chars.startIndex)..<close])
                chars = chars[chars.index(after: close)...]
                out += Self.shifted(body, group) ?? ""
                continue
            }
            var digits = ""
            while let d = chars.first, d.isASCII, d.isNumber { digits.append(d); chars.removeFirst() }
            guard let i = Int(digits) else { out.append(c); continue }
            out += group(i) ?? ""
        }
        return out
    }

    /// `N`, `N+K` or `N-K`: group N, shifted by K when it is a number.
    static func shifted(_ body: String, _ group: (Int) -> String?) -> String? {
        guard let sign = body.firstIndex(where: { $0 == "+" || $0 == "-" }) else { return Int(body).flatMap(group) }
        guard let i = Int(body[..<sign]), let k = Int(body[body.index(after: sign)...]), let value = group(i) else { return nil }
        guard let n = Int(value) else { return value }
        return String(body[sign] == "+" ? n + k : n - k)
    }

    /// Whether `template` is well formed: every `${...}` is `N`, `N+K` or `N-K`.
    public static func templateProblem(_ template: String) -> String? {
        var rest = template[...]
        while let open = rest.range(of: "${") {
            guard let close = rest[open.upperBound...].firstIndex(of: "}") else { return "'${' without a closing '}'" }
            let body = String(rest[open.upperBound..<close])
            let parts = body.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "+" || $0 == "-" })
            guard (1...2).contains(parts.count), parts.allSatisfy({ Int($0) != nil && !$0.isEmpty }) else {
                return "'${\(body)}' is not a group number (N), or a group shifted by a number (N+K, N-K)"
            }
            rest = rest[rest.index(after: close)...]
        }
        return nil
    }

    /// The problems by kind, in the order they are shown: missing, unexpected, then mis-shaped or clashing.
    var kinds: [(name: String, problems: [String])] {
        let missing = problems.filter { $0.hasPrefix("missing ") }
        let unexpected = problems.filter { $0.hasPrefix("unexpected ") }
        let other = problems.filter { !$0.hasPrefix("missing ") && !$0.hasPrefix("unexpected ") }
        return [("missing", missing), ("unexpected", unexpected), ("mis-shaped or clashing", other)].filter { !$0.problems.isEmpty }
    }

    /// How many names are missing, unexpected and mis-shaped: "36 missing, 36 unexpected".
    public var tally: String { kinds.map { "\($0.problems.count) \($0.name)" }.joined(separator: ", ") }

    /// At most `limit` problems with examples of every kind (each kind gets an equal share,
    /// and what a kind leaves unused goes to the others), and what is left out, by kind.
    public func examples(_ limit: Int) -> (shown: [String], rest: String?) {
        let groups = kinds
        var share = groups.map { _ in 0 }, left = limit
        while left > 0, share.indices.contains(where: { share[$0] < groups[$0].problems.count }) {
            for i in share.indices where left > 0 && share[i] < groups[i].problems.count {
                share[i] += 1
                left -= 1
            }
        }
        let shown = zip(groups, share).flatMap { g, n in g.problems.prefix(n) }
        let rest = zip(groups, share).filter { $0.0.problems.count > $0.1 }.map { "\($0.0.problems.count - $0.1) \($0.0.name)" }
        return (shown, rest.isEmpty ? nil : "and \(problems.count - shown.count) more (\(rest.joined(separator: ", ")))")
    }

    /// One line for an error: how many problems of each kind, and a dozen examples of every kind.
    public var summary: String {
        let (shown, rest) = examples(12)
        return "\(problems.count) problem\(problems.count == 1 ? "" : "s") (\(tally)): \(shown.joined(separator: "; "))\(rest.map { "; \($0)" } ?? "")"
    }
}

/// A stage whose weights come from a file instead of training (a teacher trained
/// elsewhere, e.g. in PyTorch on GPUs).
public struct PretrainedConfiguration: ConfigCodable {
    public var model: ModelArchitecture
    /// Where the file was when the plan was made (not part of the identity).
    public var file: String
    /// SHA-256 of the file's bytes: the identity of the weights.
    public var sha256: String
    public var rename: [WeightRename]

    public init(model: ModelArchitecture, file: String, sha256: String, rename: [WeightRename]) {
        (self.model, self.file, self.sha256, self.rename) = (model, file, sha256, rename)
    }

    public var json: JSON {
        var o = identityFields
        o["file"] = .string(file)
        return .object(o)
    }

    /// The architecture, the file's content and the renaming: a moved file is the same stage.
    var identity: JSON { .object(identityFields) }

    private var identityFields: [String: JSON] {
        ["model": model.json, "sha256": .string(sha256), "rename": .array(rename.map(\.json))]
    }

    public init(json: JSON, at path: String) throws {
        self = try ConfigReader.read(json, at: path) { r in
            PretrainedConfiguration(model: try r.decode("model"), file: try r.string("file"), sha256: try r.string("sha256"),
                                    rename: try r.list("rename") { j, p in try WeightRename(json: j, at: p) })
        }
    }
}
