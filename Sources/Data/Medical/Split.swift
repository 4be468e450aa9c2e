import Foundation
import StageConfig
import Tensor

/// Which slices a dataset has: what a split and a subset are drawn from. A prepared
/// slice set is one; so is the list a plan reads from the data's headers.
public protocol SliceInventory {
    var records: [SliceRecord] { get }
    /// Case ids, indexed by `SliceRecord.patient`.
    var patients: [String] { get }
}

/// Slices known without their pixels (from the volumes' headers, or a cache's header).
public struct SliceList: SliceInventory, Sendable {
    public var records: [SliceRecord]
    public var patients: [String]
    public init(records: [SliceRecord], patients: [String]) { (self.records, self.patients) = (records, patients) }
}

extension SliceSet: SliceInventory {}

/// How cases are divided (the spec's `data.split`).
/// The split of a slice set: which patients and slice indices are in train, val and test.
/// Written as JSON beside every run.
public struct SplitManifest: Sendable, Equatable {
    public struct Part: Sendable, Equatable {
        public var patients: [String]
        public var slices: [Int]
    }

    public var unit: SplitUnit
    public var parts: [String: Part]

    public func slices(_ part: SplitPart) -> [Int] {
        if part == .trainval { return slices(.train) + slices(.val) }
        return parts[part.rawValue]?.slices ?? []
    }

    /// The split of `set`; `keepEmpty` thins the training part's slices without foreground
    /// (a deterministic draw per slice), and only those: validation and test keep every slice.
    /// Throws when `data.split.patient` does not match a case id.
    public static func make(_ set: some SliceInventory, _ s: SplitSettings, keepEmpty: Double) throws -> SplitManifest {
        var manifest = try divide(set, s)
        if keepEmpty < 1, var train = manifest.parts["train"] {
            train.slices = train.slices.filter { i in
                let r = set.records[i]
                return r.hasForeground || Slicer.keep(patient: r.patient, slice: r.slice) < keepEmpty
            }
            manifest.parts["train"] = train
        }
        return manifest
    }

    static func divide(_ set: some SliceInventory, _ s: SplitSettings) throws -> SplitManifest {
        var parts: [String: Part] = [:]
        if s.unit == .slice {
            var rng = RNG(seed: UInt64(s.seed))
            let order = rng.permutation(set.records.count)
            let (test, val, train) = divide(order, s)
            for (name, idx) in [("train", train), ("val", val), ("test", test)] {
                let patients = Set(idx.map { set.records[$0].patient }).sorted().map { set.patients[$0] }
                parts[name] = Part(patients: patients, slices: idx.sorted())
            }
        } else {
            let (test, val, train) = try cases(set.patients, s)
            var byPatient = [Int: [Int]]()
            for (i, r) in set.records.enumerated() { byPatient[r.patient, default: []].append(i) }
            for (name, group) in [("train", train), ("val", val), ("test", test)] {
                let sorted = group.sorted()
                parts[name] = Part(patients: sorted.map { set.patients[$0] }, slices: sorted.flatMap { byPatient[$0] ?? [] })
            }
        }
        return SplitManifest(unit: s.unit, parts: parts)
    }

    /// The cases (indices into `ids`) of each part of a split by patient: the patients are
    /// permuted and divided, and each takes all its cases along.
    public static func cases(_ ids: [String], _ s: SplitSettings) throws -> (test: [Int], val: [Int], train: [Int]) {
        let members = try patients(ids, key: s.patient)
        var rng = RNG(seed: UInt64(s.seed))
        let (test, val, train) = divide(rng.permutation(members.count), s)
        return (test.flatMap { members[$0] }, val.flatMap { members[$0] }, train.flatMap { members[$0] })
    }

    /// The cases of each patient, patients in the order of their first case; without a key,
    /// each case is a patient. A case id the key does not match is an error naming it.
    public static func patients(_ ids: [String], key: String?) throws -> [[Int]] {
        guard let key else { return ids.indices.map { [$0] } }
        guard let regex = try? Regex(key) else {
            throw DatasetProblem(.patient, "data.split.patient '\(key)' is not a regular expression", files: [])
        }
        var index: [Substring: Int] = [:], members: [[Int]] = [], unmatched: [String] = []
        for (i, id) in ids.enumerated() {
            guard let match = try? regex.firstMatch(in: id) else { unmatched.append(id); continue }
            let name = match.output.count > 1 ? (match.output[1].substring ?? match.output[0].substring ?? "") : (match.output[0].substring ?? "")
            if let k = index[name] { members[k].append(i) } else { index[name] = members.count; members.append([i]) }
        }
        guard unmatched.isEmpty else {
            let shown = unmatched.prefix(5).joined(separator: ", ") + (unmatched.count > 5 ? " and \(unmatched.count - 5) more" : "")
            throw DatasetProblem(.patient, "data.split.patient '\(key)' does not match case id\(unmatched.count == 1 ? "" : "s") \(shown): "
                                 + "\(unmatched.count == 1 ? "its" : "their") patient is unknown; widen the expression so that it names every case's patient", files: [])
        }
        return members
    }

    /// How many of `n` units (patients, or slices) the test part holds.
    public static func testCount(cases n: Int, _ s: SplitSettings) -> Int {
        if let k = s.folds, k > 1 {
            let f = (s.fold ?? 0) % k
            return f < n ? (n - f + k - 1) / k : 0
        }
        let nTest = s.test > 0 ? max(1, Int((s.test * Double(n)).rounded())) : 0
        return min(nTest, max(0, n - 1))
    }

    /// Test first (or fold `fold` of `folds`), then validation, then training.
    static func divide(_ order: [Int], _ s: SplitSettings) -> (test: [Int], val: [Int], train: [Int]) {
        let n = order.count
        var test: [Int], rest: [Int]
        if let k = s.folds, k > 1 {
            let f = (s.fold ?? 0) % k
            test = order.enumerated().filter { $0.offset % k == f }.map(\.element)
            rest = order.enumerated().filter { $0.offset % k != f }.map(\.element)
        } else {
            test = Array(order.prefix(testCount(cases: n, s)))
            rest = Array(order.dropFirst(test.count))
        }
        let nVal = s.val > 0 ? min(max(1, Int((s.val * Double(n)).rounded())), max(0, rest.count - 1)) : 0
        return (test, Array(rest.prefix(nVal)), Array(rest.dropFirst(nVal)))
    }

    /// The slices of a subset chain: each level draws its share of the previous one
    /// (optionally keeping the share of slices with foreground). The draw depends on
    /// the seed and the chain, never on names, so the student's half lies inside the
    /// teacher's full set whatever the subsets are called.
    public func subset(_ chain: SubsetChain, of set: some SliceInventory, seed: UInt64) -> [Int] {
        let chain = chain.levels
        guard let root = chain.first else { return slices(.train) }
        var current = slices(root.part)
        for (depth, level) in chain.enumerated() {
            guard level.fraction < 1 else { continue }
            var rng = RNG(seed: Seeds.subset(seed, depth: depth, fraction: level.fraction))
            func draw(_ pool: [Int]) -> [Int] {
                let k = Int((Double(pool.count) * level.fraction).rounded())
                return rng.permutation(pool.count).prefix(k).map { pool[$0] }
            }
            if level.stratify {
                current = (draw(current.filter { set.records[$0].hasForeground }) + draw(current.filter { !set.records[$0].hasForeground })).sorted()
            } else {
                current = draw(current).sorted()
            }
        }
        return current
    }

    public var json: [String: Any] {
        ["unit": unit.rawValue, "parts": parts.mapValues { ["patients": $0.patients, "slices": $0.slices] as [String: Any] }]
    }
}
