import Tensor

extension F {
    /// out[i] = x[map[i]]: the one op behind slicing, patchifying and token shuffles.
    /// Backward scatters: dx[map[i]] += dy[i].
    public static func gather(_ x: Variable, map: [Int32], shape: [Int]) -> Variable {
        let y = Tensor(uninitialized: shape)
        precondition(map.count == y.count, "gather: \(map.count) indices for shape \(shape)")
        for i in 0..<map.count { y.pointer[i] = x.value.pointer[Int(map[i])] }
        return Trace.note(.gather(map: map), [x], Tape.output(y, inputs: [x]) { out in
            let dy = out.gradBuffer(), dx = x.gradBuffer()
            for i in 0..<map.count { dx[Int(map[i])] += dy[i] }
        })
    }

    /// x[..., start..<start+length, ...] along `axis`.
    public static func narrow(_ x: Variable, axis: Int, start: Int, length: Int) -> Variable {
        let outer = x.shape[..<axis].reduce(1, *), size = x.shape[axis], inner = x.shape[(axis + 1)...].reduce(1, *)
        var map: [Int32] = []
        map.reserveCapacity(outer * length * inner)
        for o in 0..<outer { for k in start..<(start + length) { for i in 0..<inner { map.append(Int32((o * size + k) * inner + i)) } } }
        var shape = x.shape
        shape[axis] = length
        return Trace.note(.narrow(axis: axis, start: start, length: length), [x],
                          Trace.unrecorded { gather(x, map: map, shape: shape) })
    }

    /// A [1, 1, D] token repeated for each of the N sequences and put in front: [N, L, D] -> [N, L+1, D].
    public static func prependToken(_ tokens: Variable, _ token: Variable) -> Variable {
        let (n, l, d) = (tokens.shape[0], tokens.shape[1], tokens.shape[2])
        let y = Tensor(uninitialized: [n, l + 1, d])
        for b in 0..<n {
            (y.pointer + b * (l + 1) * d).update(from: token.value.pointer, count: d)
            (y.pointer + b * (l + 1) * d + d).update(from: tokens.value.pointer + b * l * d, count: l * d)
        }
        return Trace.note(.prependToken, [tokens, token], Tape.output(y, inputs: [tokens, token]) { out in
            let dy = out.gradBuffer()
            for b in 0..<n {
                if let dt = token.gradTarget { for j in 0..<d { dt[j] += dy[b * (l + 1) * d + j] } }
                if let dx = tokens.gradTarget { for j in 0..<(l * d) { dx[b * l * d + j] += dy[b * (l + 1) * d + d + j] } }
            }
        })
    }
}

extension F {
    /// x [n, d], this process's rows of a batch split over processes, as the rows of the
    /// whole batch [N, d] (`CrossBatch.gatherRows`); x itself in one process. The
    /// gradient of the global rows flows back to this process's own: every process
    /// computes the same global loss, so each keeps the part of its gradient that its
    /// parameters produced, and the sum over processes is the one-process gradient.
    public static func batchRows(_ x: Variable) -> Variable {
        guard CrossBatch.group != nil else { return x }
        let (n, d) = (x.shape[0], x.shape.dropFirst().reduce(1, *))
        let (values, total, offset) = CrossBatch.gatherRows(x.value.pointer, rows: n, width: d)
        return Tape.output(Tensor(shape: [total, d], values: values), inputs: [x]) { out in
            let dy = out.gradBuffer(), dx = x.gradBuffer()
            for i in 0..<(n * d) { dx[i] += dy[offset * d + i] }
        }
    }
}
