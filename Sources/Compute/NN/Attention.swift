import Foundation
import Tensor

extension F {
    /// Multi-head scaled dot-product attention over q, k, v [N, L, h*dh]: feature j*dh + e
    /// belongs to head j. Returns the heads concatenated back [N, L, h*dh] and the
    /// attention probabilities [N*h, L, L] (query, key).
    public static func multiHeadAttention(q: Variable, k: Variable, v: Variable, heads: Int) -> (Variable, Variable) {
        let (n, l, inner) = (q.shape[0], q.shape[1], q.shape[2])
        let dh = inner / heads
        func split(_ x: Variable) -> Variable {
            F.reshape(F.permute(F.reshape(x, [n, l, heads, dh]), [0, 2, 1, 3]), [n * heads, l, dh])
        }
        let scores = F.scale(F.bmm(split(q), split(k), transposeB: true), 1 / Float(dh).squareRoot())
        let attn = F.softmax(scores, axis: -1)
        let o = F.bmm(attn, split(v))
        let merged = F.reshape(F.permute(F.reshape(o, [n, heads, l, dh]), [0, 2, 1, 3]), [n, l, inner])
        return (merged, attn)
    }
}
