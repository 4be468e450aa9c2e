/// One batch split over several processes (data-parallel training): the sums that
/// span the whole batch go through the group, so every process computes the loss
/// and the batch statistics of the global batch, exactly as one process would (up
/// to the order of the sums).
///
/// A loss that averages over its elements divides by the global count; a loss
/// pooled over the batch (Dice) pools the global sums; batch norm uses the global
/// mean and variance (SyncBN) and the global gradient sums. The parameter gradients
/// each process then holds are its part of the global gradient: summed over the
/// processes (an allreduce) they are the one-process gradient.
public final class BatchGroup: Sendable {
    /// Replaces `count` doubles with their sum over the group, in place. Every
    /// process calls it in the same order with the same count.
    public let sum: @Sendable (UnsafeMutablePointer<Double>, Int) -> Void
    public let processes: Int
    /// This process's place in the group: its images follow those of the processes before it.
    public let rank: Int

    public init(processes: Int, rank: Int, sum: @escaping @Sendable (UnsafeMutablePointer<Double>, Int) -> Void) {
        (self.processes, self.rank, self.sum) = (processes, rank, sum)
    }
}

public enum CrossBatch {
    /// The group of the running training step; nil in one process and outside training steps.
    @TaskLocal public static var group: BatchGroup?

    /// Sums `values` over the group (unchanged without one).
    public static func sum(_ values: inout [Double]) {
        guard let group, !values.isEmpty else { return }
        values.withUnsafeMutableBufferPointer { b in if let p = b.baseAddress { group.sum(p, b.count) } }
    }

    /// A sum over the global batch and its element count, from this process's: what a
    /// mean loss divides (its value and its gradient) by. Unchanged in one process.
    public static func total(_ sum: Double, count: Int) -> (sum: Double, count: Double) {
        guard group != nil else { return (sum, Double(count)) }  // every loss of every step: no array in one process
        var v = [sum, Double(count)]
        Self.sum(&v)
        return (v[0], v[1])
    }

    /// The rows of every process, in rank order (the order of the global batch), from
    /// this process's `rows` x `width` values; and where this process's rows start.
    /// A loss that contrasts each image with every other one (InfoNCE, SupCon) is
    /// computed on the global rows by every process. Floats pass through the
    /// doubles of the group's sum unchanged.
    public static func gatherRows(_ local: UnsafePointer<Float>, rows: Int, width: Int) -> (values: [Float], rows: Int, offset: Int) {
        guard let group else { return (Array(UnsafeBufferPointer(start: local, count: rows * width)), rows, 0) }
        var counts = [Double](repeating: 0, count: group.processes)
        counts[group.rank] = Double(rows)
        sum(&counts)
        let offset = Int(counts[..<group.rank].reduce(0, +)), total = Int(counts.reduce(0, +))
        var all = [Double](repeating: 0, count: total * width)
        for i in 0..<(rows * width) { all[offset * width + i] = Double(local[i]) }
        sum(&all)
        return (all.map { Float($0) }, total, offset)
    }

    /// The number of elements over the group.
    public static func count(_ local: Int) -> Int {
        guard group != nil else { return local }
        var v = [Double(local)]
        sum(&v)
        return Int(v[0])
    }
}
