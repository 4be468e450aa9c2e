/// The spec's `execution.slurm`: what `distill submit` asks Slurm for. Read from the
/// checked document (the schema fills its defaults); never part of a stage's identity.
public struct SlurmSettings: ConfigCodable, Sendable {
    public var partition: String?
    public var account: String?
    public var qos: String?
    public var cpusPerTask: Int?
    public var mem: String?
    public var time: String?
    public var extra: [String]
    /// Nodes of every training stage's job, and of named ones; each node runs `ranksPerNode` MPI ranks.
    public var nodes: Int
    public var ranksPerNode: Int
    public var stageNodes: [String: Int]
    /// A job's wall-time budget: longer training stages get more nodes, up to `maxNodes`.
    public var maxTime: String?
    public var maxNodes: Int

    public init(partition: String? = nil, account: String? = nil, qos: String? = nil, cpusPerTask: Int? = nil, mem: String? = nil, time: String? = nil, extra: [String] = [],
                nodes: Int, ranksPerNode: Int, stageNodes: [String: Int] = [:], maxTime: String? = nil, maxNodes: Int) {
        self.qos = qos
        (self.partition, self.account, self.cpusPerTask, self.mem, self.time, self.extra) = (partition, account, cpusPerTask, mem, time, extra)
        (self.nodes, self.ranksPerNode, self.stageNodes, self.maxTime, self.maxNodes) = (nodes, ranksPerNode, stageNodes, maxTime, maxNodes)
    }

    public var json: JSON {
        func text(_ s: String?) -> JSON { s.map(JSON.string) ?? .null }
        return .object(["partition": text(partition), "account": text(account), "qos": text(qos), "cpus_per_task": cpusPerTask.map(JSON.int) ?? .null,
                        "mem": text(mem), "time": text(time), "extra": .array(extra.map(JSON.string)), "nodes": .int(nodes),
                        "ranks_per_node": .int(ranksPerNode), "stage_nodes": .object(stageNodes.mapValues(JSON.int)),
                        "max_time": text(maxTime), "max_nodes": .int(maxNodes)])
    }

    /// Nodes of a job (`nodes`, `stage_nodes`, `max_nodes`).
    public static let nodesRange = 1...4096
    /// CPUs of a job, ranks on a node.
    public static let perNodeRange = 1...1024

    public init(json: JSON, at path: String) throws {
        let (nodes, perNode) = (Self.nodesRange, Self.perNodeRange)
        self = try ConfigReader.read(json, at: path, declaration: Self.declaration) { r in
            func text(_ key: String) throws -> String? { try r.optional(key) { r, k in try r.string(k) } }
            return SlurmSettings(
                partition: try text("partition"), account: try text("account"), qos: try text("qos"), cpusPerTask: try r.optional("cpus_per_task") { r, k in try r.int(k) },
                mem: try text("mem"), time: try text("time"),
                extra: try r.list("extra") { j, p in try ConfigValue.string(j, at: p) },
                nodes: try r.int("nodes"),
                ranksPerNode: try r.int("ranks_per_node"),
                stageNodes: Dictionary(try r.dictionary("stage_nodes") { name, v, p in (name, try ConfigValue.int(v, at: p)) },
                                       uniquingKeysWith: { a, _ in a }),
                maxTime: try text("max_time"), maxNodes: try r.int("max_nodes"))
        }
    }

    /// The values written into a job script, with the key each came from.
    public var scriptValues: [(key: String, value: String)] {
        [("partition", partition), ("account", account), ("qos", qos), ("mem", mem), ("time", time), ("max_time", maxTime)].compactMap { k, v in v.map { (k, $0) } }
            + extra.enumerated().map { ("extra[\($0.offset)]", $0.element) }
    }

    /// Whether `value` is a partition, account or QOS name: letters, digits and `_ . - +`
    /// (a partition or QOS list separates names with commas). A space would make the rest of
    /// the value another `#SBATCH` option.
    public static func isName(_ value: String, list: Bool) -> Bool {
        !value.isEmpty && value.unicodeScalars.allSatisfy { c in
            (c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c) || "_.-+".unicodeScalars.contains(c))) || (list && c == ",")
        }
    }

    /// Whether `value` is a memory size as sbatch reads `--mem`: a whole number with an optional unit K, M, G or T.
    public static func isMemory(_ value: String) -> Bool {
        guard let last = value.last else { return false }
        let digits = "KMGTkmgt".contains(last) ? value.dropLast() : Substring(value)
        return !digits.isEmpty && digits.allSatisfy { $0.isASCII && $0.isNumber }
    }

    /// `[D-]HH:MM:SS`, `HH:MM` or minutes, as sbatch reads `--time`; nil when malformed.
    public static func seconds(_ text: String) -> Double? {
        var days = 0.0, rest = Substring(text)
        if let dash = text.firstIndex(of: "-") {
            guard let d = Double(text[..<dash]) else { return nil }
            days = d
            rest = text[text.index(after: dash)...]
        }
        let parts = rest.split(separator: ":", omittingEmptySubsequences: false).map { Double($0) }
        guard !parts.isEmpty, parts.count <= 3, parts.allSatisfy({ ($0 ?? -1) >= 0 }) else { return nil }
        let v = parts.compactMap { $0 }
        let clock: Double
        switch v.count {
        case 1: clock = days > 0 ? v[0] * 3600 : v[0] * 60  // D-HH, or minutes
        case 2: clock = days > 0 ? v[0] * 3600 + v[1] * 60 : v[0] * 60 + v[1]  // D-HH:MM, or MM:SS
        default: clock = v[0] * 3600 + v[1] * 60 + v[2]
        }
        return days * 86400 + clock
    }
}
