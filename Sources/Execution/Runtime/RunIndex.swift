import CSQLite
import Foundation
import Plan
import StageConfig

/// An SQLite index of the store: stages, their status and timings, variants and
/// test metrics, for quick queries (`sqlite3 runs/index.sqlite`). The store is
/// the truth; a missing or damaged index is rebuilt from it.
public final class RunIndex: @unchecked Sendable {
    private var db: OpaquePointer?
    private let lock = NSLock()
    public let path: String

    static let schema = """
        CREATE TABLE IF NOT EXISTS stages (hash TEXT PRIMARY KEY, kind TEXT, label TEXT, status TEXT, seconds REAL, updated TEXT);
        CREATE TABLE IF NOT EXISTS variants (spec TEXT, variant TEXT, stage TEXT, train TEXT, evaluate TEXT, PRIMARY KEY (spec, variant, stage));
        CREATE TABLE IF NOT EXISTS metrics (stage TEXT, name TEXT, value REAL, PRIMARY KEY (stage, name));
        """

    /// Opens (or creates and fills from the store) the index of `store`.
    public init(store: RunStore) throws {
        path = store.root + "/index.sqlite"
        try RunStore.createFolder(store.root)
        let existed = FileManager.default.fileExists(atPath: path)
        guard sqlite3_open(path, &db) == SQLITE_OK else { throw RuntimeError.io("cannot open \(path)") }
        sqlite3_busy_timeout(db, 5000)
        if (try? exec(Self.schema)) == nil || (try? count("stages")) == nil {
            // Damaged: start again from the store.
            sqlite3_close(db)
            try? FileManager.default.removeItem(atPath: path)
            guard sqlite3_open(path, &db) == SQLITE_OK else { throw RuntimeError.io("cannot open \(path)") }
            try exec(Self.schema)
            try rebuild(from: store)
        } else if !existed {
            try rebuild(from: store)
        }
    }

    deinit { sqlite3_close(db) }

    func exec(_ sql: String) throws {
        var error: UnsafeMutablePointer<CChar>?
        guard sqlite3_exec(db, sql, nil, nil, &error) == SQLITE_OK else {
            let message = error.map { String(cString: $0) } ?? "?"
            sqlite3_free(error)
            throw RuntimeError.io("index: \(message)")
        }
    }

    /// Runs a statement with text/real bindings.
    func run(_ sql: String, _ values: [Any?]) throws {
        lock.lock()
        defer { lock.unlock() }
        var stmt: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &stmt, nil) == SQLITE_OK else { throw RuntimeError.io("index: cannot prepare \(sql)") }
        defer { sqlite3_finalize(stmt) }
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        for (i, v) in values.enumerated() {
            switch v {
            case let d as Double: sqlite3_bind_double(stmt, Int32(i + 1), d)
            case let s as String: sqlite3_bind_text(stmt, Int32(i + 1), s, -1, transient)
            default: sqlite3_bind_null(stmt, Int32(i + 1))
            }
        }
        guard sqlite3_step(stmt) == SQLITE_DONE else { throw RuntimeError.io("index: \(String(cString: sqlite3_errmsg(db)))") }
    }

    public func count(_ table: String, where condition: String = "1") throws -> Int {
        lock.lock()
        defer { lock.unlock() }
        var stmt: OpaquePointer?
        guard sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM \(table) WHERE \(condition)", -1, &stmt, nil) == SQLITE_OK else { throw RuntimeError.io("index: bad query") }
        defer { sqlite3_finalize(stmt) }
        guard sqlite3_step(stmt) == SQLITE_ROW else { throw RuntimeError.io("index: no result") }
        return Int(sqlite3_column_int64(stmt, 0))
    }

    public func record(stage: PlanStage, status: String, seconds: Double?, metrics: JSON?) {
        record(hash: stage.hash, kind: stage.kind.rawValue, label: stage.label, status: status, seconds: seconds, metrics: metrics)
    }

    func record(hash: String, kind: String, label: String, status: String, seconds: Double?, metrics: JSON?) {
        let now = ISO8601DateFormatter().string(from: Date())
        try? run("INSERT OR REPLACE INTO stages VALUES (?, ?, ?, ?, ?, ?)", [hash, kind, label, status, seconds, now])
        for (name, value) in (metrics?["pooled"]?.object ?? [:]) {
            if let v = value.number { try? run("INSERT OR REPLACE INTO metrics VALUES (?, ?, ?)", [hash, name, v]) }
        }
    }

    public func record(plan: ExecutionPlan, spec: String) {
        for v in plan.variants {
            for s in v.stages { try? run("INSERT OR REPLACE INTO variants VALUES (?, ?, ?, ?, ?)", [spec, v.name, s.name, s.train, s.evaluate]) }
        }
    }

    /// Refills the stage and metric tables from the store's folders.
    func rebuild(from store: RunStore) throws {
        let dirs = (try? FileManager.default.contentsOfDirectory(atPath: store.root + "/stages")) ?? []
        // Only folders named by a stage hash; only what a valid done record vouches for.
        for hash in dirs where hash.count == 64 && hash.allSatisfy(\.isHexDigit) {
            guard let data = FileManager.default.contents(atPath: store.file(hash, "stage.json")), let json = JSON.parse(data) else { continue }
            var seconds: Double?, done = false
            if case .valid(let record) = store.record(hash) { (done, seconds) = (true, record.fields["seconds"]?.number) }
            let metrics = done ? (try? store.verifiedFile(hash, "metrics.json")).flatMap { FileManager.default.contents(atPath: $0) }.flatMap(JSON.parse) : nil
            record(hash: hash, kind: json["kind"]?.string ?? "unknown", label: json["label"]?.string ?? "",
                   status: done ? "done" : "incomplete", seconds: seconds, metrics: metrics)
        }
    }
}
