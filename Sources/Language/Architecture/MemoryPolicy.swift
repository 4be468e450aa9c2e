/// The runtime's bound on freed memory it keeps resident for reuse: the buffer pool
/// (Tensor's `BufferPool`) keeps at most this much idle, and the plan counts it in every
/// stage's peak memory.
public enum MemoryPolicy {
    /// Freed memory kept resident for reuse, at most. A step must find the memory it
    /// cycles here: S2 at batch 16 cycles about 1.3 GiB (with a 1 GiB bound `distill
    /// bench --row s2_train` ran 13-24% slower), T1 at batch 8 about 5 GiB (with a
    /// 3 GiB bound its step spent 16% of its time in the kernel zeroing fresh pages).
    public static let idleLimitBytes = 8 << 30

    /// The most a stage's process can hold idle when a step allocates `stepBytes`
    /// (its activations and their gradients): never more than it freed, nor than the bound.
    public static func idleBytes(forStepBytes stepBytes: Int) -> Int { min(idleLimitBytes, stepBytes) }
}
