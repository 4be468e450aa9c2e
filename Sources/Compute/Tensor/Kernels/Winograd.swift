import CKernels

// Winograd F(2x2, 3x3) for the deep 3x3 layers: the transforms are in CKernels
// (Winograd.c), the 16 products per band of tiles run on sgemm here. It does
// 2.25 times fewer multiplications than im2col + sgemm; what it costs is the
// transforms' memory traffic, which pays off where channels are many (the
// products are then large GEMMs) and the maps small. Which layers take it is
// `ConvAlgorithm.rule`'s business.
//
// The forward pass and the input gradient (a forward convolution of dy with the
// flipped, transposed kernel, padding 2 - p) run through one path; the weight
// gradient transforms the input's tiles as the forward pass does and the output
// gradient's 2x2 tiles by A, and sums their products over every tile of the batch.
public enum Winograd {
    /// Its contract: 3x3 kernels, stride 1, no dilation, padding up to 2, a non-empty output; every pass.
    public static func supports(_ g: ConvGeometry, _ pass: ConvPass) -> Bool {
        g.kh == 3 && g.kw == 3 && g.stride == 1 && g.dilation == 1 && g.padding <= 2 && g.p > 0 && g.q > 0
    }

    /// y = conv(x, w) + b for every image (overwrites y).
    static func forward(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                        _ y: UnsafeMutablePointer<Float>, _ g: ConvGeometry) {
        run(x, weight, bias, y, g, inputGradient: false, accumulate: false)
    }

    /// dx += conv_transpose(dy, w) (dx = ..., overwriting it, when `accumulate` is false).
    static func inputGradient(_ dy: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ g: ConvGeometry,
                              accumulate: Bool = true) {
        run(dy, weight, nil, dx, g, inputGradient: true, accumulate: accumulate)
    }

    /// Tile rows per band. The whole band's transformed input (16 points x inputs x tiles) within about
    /// 1 MB, so that the input transform writes it to L2 and the 16 products read it there, when that still
    /// gives each product 128 tiles or more (layers of up to 128 input channels); else one point of it within
    /// about 256 KB, so that each product reads its point from L2 (deep layers, whose products need wide
    /// bands more than a band in L2). At least one tile row. On S2's 128>64 layer at 128^2 the forward pass
    /// took 152-188 ms with bands of 128 tiles against 190-196 with 512 (`distill bench --conv`, three
    /// alternating runs); on T1's layers of 512 and 1024 channels, bands a quarter as wide were 1.2-1.6 times slower.
    static func bandTileRows(inputs: Int, tilesX: Int, tilesY: Int) -> Int {
        let inL2 = (1 << 14) / max(1, inputs), perPoint = (1 << 16) / max(1, inputs)
        let tiles = inL2 >= 128 ? inL2 : perPoint
        return max(1, min(tilesY, tiles / max(1, tilesX)))
    }

    private static func run(_ input: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                            _ output: UnsafeMutablePointer<Float>, _ g: ConvGeometry, inputGradient: Bool, accumulate: Bool) {
        // The convolution this pass computes: input [inputs, h, w] to output [outputs, p, q].
        let (inputs, outputs) = inputGradient ? (g.o, g.c) : (g.c, g.o)
        let (h, w, p, q) = inputGradient ? (g.p, g.q, g.h, g.w) : (g.h, g.w, g.p, g.q)
        let pad = inputGradient ? 2 - g.padding : g.padding
        let u = Scratch.floats(16 * inputs * outputs)
        defer { Scratch.release(u, 16 * inputs * outputs) }
        ck_winograd_weights(weight, u, Int32(g.o), Int32(g.c), inputGradient ? 1 : 0)
        let tilesX = (q + 1) / 2, tilesY = (p + 1) / 2
        let band = bandTileRows(inputs: inputs, tilesX: tilesX, tilesY: tilesY)
        let bands = (tilesY + band - 1) / band
        let inSize = inputs * h * w, outSize = outputs * p * q
        Parallel.forEach(g.n * bands) { item in
            let (n, b) = (item / bands, item % bands)
            let rows = (b * band)..<min(tilesY, (b + 1) * band)
            let tiles = rows.count * tilesX
            let vCount = 16 * inputs * tiles, mCount = 16 * outputs * tiles
            let v = Scratch.floats(vCount), m = Scratch.floats(mCount)
            defer { Scratch.release(v, vCount); Scratch.release(m, mCount) }
            ck_winograd_input(input + n * inSize, v, Int32(inputs), Int32(h), Int32(w), Int32(pad), Int32(tilesX),
                              Int32(rows.lowerBound), Int32(rows.upperBound), Int32(tiles), 0)
            for point in 0..<16 {
                GEMM.multiply(u + point * outputs * inputs, transposeA: false, v + point * inputs * tiles, transposeB: false,
                              m + point * outputs * tiles, m: outputs, n: tiles, k: inputs)
            }
            ck_winograd_output(m, bias, output + n * outSize, Int32(outputs), Int32(p), Int32(q), Int32(tilesX),
                               Int32(rows.lowerBound), Int32(rows.upperBound), accumulate ? 1 : 0)
        }
    }

    /// dw += dL/dw and db += dL/db (if given) from x and dy. Each worker sums the products of a
    /// fixed share of the batch's tile rows (bands may span images), and the shares are added
    /// in a fixed order, so the result depends on the thread count only.
    static func weightGradient(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dw: UnsafeMutablePointer<Float>,
                               _ db: UnsafeMutablePointer<Float>?, _ g: ConvGeometry) {
        let (inputs, outputs, P) = (g.c, g.o, g.p * g.q)
        let tilesX = (g.q + 1) / 2, tilesY = (g.p + 1) / 2
        let rowsInBatch = g.n * tilesY
        // Tiles per band: a band's transformed tiles within about 8 MB on the wider side.
        let bandRows = max(1, min(rowsInBatch, (1 << 17) / max(1, max(inputs, outputs) * tilesX)))
        let points = 16 * outputs * inputs
        let sums = Scratch.floats(points)
        defer { Scratch.release(sums, points) }
        sums.update(repeating: 0, count: points)
        let workers = min(Parallel.threads, rowsInBatch)
        WeightGradients.accumulate(images: workers, weightCount: points, biasCount: outputs, sums, db) { worker, workers, pm, pdb in
            let share = (rowsInBatch * worker / workers)..<(rowsInBatch * (worker + 1) / workers)
            let capacity = bandRows * tilesX
            let v = Scratch.floats(16 * inputs * capacity), e = Scratch.floats(16 * outputs * capacity)
            defer { Scratch.release(v, 16 * inputs * capacity); Scratch.release(e, 16 * outputs * capacity) }
            for start in stride(from: share.lowerBound, to: share.upperBound, by: bandRows) {
                let band = start..<min(share.upperBound, start + bandRows)
                let tiles = band.count * tilesX
                // The band's tile rows, image by image.
                var row = band.lowerBound
                while row < band.upperBound {
                    let n = row / tilesY, first = row % tilesY, last = min(tilesY, first + band.upperBound - row)
                    let offset = Int32((row - band.lowerBound) * tilesX)
                    ck_winograd_input(x + n * inputs * g.h * g.w, v, Int32(inputs), Int32(g.h), Int32(g.w), Int32(g.padding), Int32(tilesX),
                                      Int32(first), Int32(last), Int32(tiles), offset)
                    ck_winograd_gradient(dy + n * outputs * P, e, Int32(outputs), Int32(g.p), Int32(g.q), Int32(tilesX),
                                         Int32(first), Int32(last), Int32(tiles), offset)
                    row += last - first
                }
                for point in 0..<16 {
                    GEMM.multiply(e + point * outputs * tiles, transposeA: false, v + point * inputs * tiles, transposeB: true,
                                  pm + point * outputs * inputs, m: outputs, n: inputs, k: tiles, beta: 1)
                }
            }
            // The bias gradient: this worker's images (the shares of tile rows do not split it evenly, and need not).
            var n = worker
            while n < g.n {
                for o in 0..<outputs { pdb[o] += Reduction.sum(dy + (n * outputs + o) * P, count: P) }
                n += workers
            }
        }
        ck_winograd_weight_gradient(sums, dw, Int32(outputs), Int32(inputs))
    }
}
