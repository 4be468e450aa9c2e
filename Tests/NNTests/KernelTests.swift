import Foundation
import NN
import Tensor
import Testing

/// Fast kernels against their naive references (llm.c's `*_naive` algorithmic references).
@Suite struct KernelTests {
    static let geometries = [
        ConvGeometry(n: 2, c: 3, h: 9, w: 7, o: 5, kh: 3, kw: 3, stride: 1, padding: 1),
        ConvGeometry(n: 3, c: 2, h: 11, w: 10, o: 4, kh: 3, kw: 3, stride: 2, padding: 3, dilation: 3),
        ConvGeometry(n: 2, c: 3, h: 16, w: 16, o: 6, kh: 7, kw: 7, stride: 2, padding: 3),
        ConvGeometry(n: 2, c: 8, h: 5, w: 6, o: 3, kh: 1, kw: 1),
        ConvGeometry(n: 1, c: 4, h: 6, w: 6, o: 2, kh: 3, kw: 3, stride: 1, padding: 2, dilation: 2),
    ]

    @Test(arguments: 0..<geometries.count)
    func convolutionMatchesItsNaiveReference(_ index: Int) {
        let g = Self.geometries[index]
        var rng = RNG(seed: UInt64(index))
        let x = rng.uniformTensor([g.n, g.c, g.h, g.w], -1, 1), w = rng.uniformTensor([g.o, g.c, g.kh, g.kw], -1, 1)
        let b = rng.uniformTensor([g.o], -1, 1), dy = rng.uniformTensor([g.n, g.o, g.p, g.q], -1, 1)
        let fast = Tensor(zeros: dy.shape), slow = Tensor(zeros: dy.shape)
        Conv2D.forward(x.pointer, w.pointer, b.pointer, fast.pointer, g)
        Conv2D.forwardNaive(x.pointer, w.pointer, b.pointer, slow.pointer, g)
        expectClose(fast, slow)
        let (dx1, dw1, db1) = (Tensor(zeros: x.shape), Tensor(zeros: w.shape), Tensor(zeros: b.shape))
        let (dx2, dw2, db2) = (Tensor(zeros: x.shape), Tensor(zeros: w.shape), Tensor(zeros: b.shape))
        Conv2D.backward(x.pointer, w.pointer, dy.pointer, dx1.pointer, dw1.pointer, db1.pointer, g)
        Conv2D.backwardNaive(x.pointer, w.pointer, dy.pointer, dx2.pointer, dw2.pointer, db2.pointer, g)
        expectClose(dx1, dx2)
        expectClose(dw1, dw2)
        expectClose(db1, db2)
    }

    @Test func gemmMatchesItsNaiveReference() {
        var rng = RNG(seed: 3)
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let (m, n, k) = (5, 7, 9)
            let a = rng.uniformTensor([m * k], -1, 1), b = rng.uniformTensor([k * n], -1, 1)
            let c1 = rng.uniformTensor([m * n], -1, 1), c2 = c1.copy()
            GEMM.multiply(a.pointer, transposeA: ta, b.pointer, transposeB: tb, c1.pointer, m: m, n: n, k: k, alpha: 0.5, beta: 1)
            GEMM.multiplyNaive(a.pointer, transposeA: ta, b.pointer, transposeB: tb, c2.pointer, m: m, n: n, k: k, alpha: 0.5, beta: 1)
            expectClose(c1, c2)
        }
    }

    @Test func threadCountDoesNotChangeResults() {
        var rng = RNG(seed: 5)
        let g = ConvGeometry(n: 4, c: 3, h: 8, w: 8, o: 4, kh: 3, kw: 3, padding: 1)
        let x = rng.uniformTensor([4, 3, 8, 8], -1, 1), w = rng.uniformTensor([4, 3, 3, 3], -1, 1), dy = rng.uniformTensor([4, 4, 8, 8], -1, 1)
        var grads: [Tensor] = []
        for threads in [1, 2] {
            Parallel.setThreads(threads)
            let dw = Tensor(zeros: w.shape)
            Conv2D.backward(x.pointer, w.pointer, dy.pointer, nil, dw.pointer, nil, g)
            grads.append(dw)
        }
        Parallel.setThreads(ProcessInfo.processInfo.activeProcessorCount)
        expectClose(grads[0], grads[1], atol: 1e-5)
    }

    @Test func rngIsDocumentedAndStable() {
        var a = RNG(seed: 42), b = RNG(seed: 42), c = RNG(seed: 43)
        let xs = (0..<4).map { _ in a.next() }
        #expect(xs == (0..<4).map { _ in b.next() })
        #expect(xs != (0..<4).map { _ in c.next() })
        var u = RNG(seed: 7)
        for _ in 0..<1000 { let v = u.uniform(); #expect(v >= 0 && v < 1) }
        var p = RNG(seed: 1)
        #expect(p.permutation(10).sorted() == Array(0..<10))
    }

    func expectClose(_ a: Tensor, _ b: Tensor, atol: Float = 1e-4, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(a.shape == b.shape, sourceLocation: sourceLocation)
        var worst: Float = 0
        for i in 0..<min(a.count, b.count) { worst = max(worst, abs(a.pointer[i] - b.pointer[i]) / max(1, abs(b.pointer[i]))) }
        #expect(worst <= atol, "max difference \(worst)", sourceLocation: sourceLocation)
    }
}
