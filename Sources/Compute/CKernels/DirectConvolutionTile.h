// The direct convolution's register tiles, written once for any vector width and
// included by DirectConvolution.c once per instruction set (see the comment there).
// Not a public header: the including file defines, before each inclusion,
//   CK_V            the vector type (__m512, __m256)          CK_L    its lanes (16, 8)
//   CK_MASK         a lane mask (__mmask16, __m256i)          CK_VB   vectors per forward tile (4, 2)
//   CK_GB           output channels per weight-gradient tile (2, 1: x 9 taps of accumulators)
//   CK_SUFFIX       the suffix of this width's function names  CK_TARGET  its target attribute
// and the operations: CK_SET1, CK_ZERO, CK_LOAD (aligned), CK_LOADU, CK_STORE (aligned),
// CK_ADD, CK_FMA(a, b, c) = a*b + c, CK_LANES(lo, hi) (lanes lo <= lane < hi),
// CK_MASKZ_LOADU(m, p), CK_MASK_STOREU(p, m, v), CK_REDUCE(v) (sum of the lanes).

#define CK_CAT2(a, b) a##b
#define CK_CAT(a, b) CK_CAT2(a, b)
#define CK_FN(name) CK_CAT(name, CK_SUFFIX)

/// Lanes whose input column col0 + lane lies in [0, w).
CK_TARGET static inline CK_MASK CK_FN(columnMask)(int col0, int w) {
    int lo = col0 < 0 ? -col0 : 0, hi = w - col0;
    if (hi > CK_L) hi = CK_L;
    return CK_LANES(lo, hi);
}

/// Output lanes j0 + lane < q.
CK_TARGET static inline CK_MASK CK_FN(storeMask)(int j0, int q) {
    int n = q - j0;
    return CK_LANES(0, n > CK_L ? CK_L : n);
}

/// Copies the input rows that output rows [i0, i1) of slice z read (depth taps [aBegin, aEnd)) into the band.
CK_TARGET static void CK_FN(stageRows)(const float *x, const ck_conv *g, int z, int aBegin, int aEnd, int i0, int i1, stagedBand *band) {
    int h = g->height, w = g->width, pad = g->pad, rows = i1 - i0 + g->kh - 1;
    size_t plane = (size_t)h * w, channel = (size_t)g->depth * plane;
    for (int ci = 0; ci < g->inputs; ci++)
        for (int a = aBegin; a < aEnd; a++) {
            const float *xc = x + (size_t)ci * channel + (size_t)(z + a - g->padDepth) * plane;
            float *sp = band->data + ((size_t)ci * g->kd + a) * band->planeStride;
            for (int t = 0; t < rows; t++) {
                float *row = sp + (size_t)t * band->rowStride;
                int r = i0 - pad + t;
                if (r < 0 || r >= h) continue;  // Padding rows: the tile skips their taps.
                const float *xr = xc + (size_t)r * w;
                // Staged column c is image column c - pad.
                for (size_t c = 0; c < band->rowStride; c += CK_L) {
                    int col = (int)c - pad;
                    CK_V value = col >= 0 && col + CK_L <= w ? CK_LOADU(xr + col) : CK_MASKZ_LOADU(CK_FN(columnMask)(col, w), xr + col);
                    CK_STORE(row + c, value);
                }
            }
        }
}

/// One tile: the first RB channels of output block `blockWeights` (OB channels starting at o0), slice z, row i,
/// columns j0 ..< j0 + L VB, reading the staged band.
CK_TARGET __attribute__((always_inline)) static inline void
CK_FN(forwardTile)(const stagedBand *band, const float *blockWeights, const float *bias, float *y, const ck_conv *g,
                   int pd, int p, int q, int o0, int z, int aBegin, int aEnd, int i, int j0, int accumulate, const int VB, const int KW, const int RB) {
    int h = g->height, kd = g->kd, kh = g->kh, pad = g->pad;
    CK_V acc[OB][CK_VB];
    for (int r = 0; r < RB; r++) {
        float b0 = (bias && o0 + r < g->outputs) ? bias[o0 + r] : 0.0f;
        for (int b = 0; b < VB; b++) acc[r][b] = CK_SET1(b0);
    }
    // Taps inside the input along height (padding is skipped, not read); along depth, [aBegin, aEnd).
    int uBegin = pad - i > 0 ? pad - i : 0;
    int uEnd = h + pad - i < kh ? h + pad - i : kh;
    const float *rows = band->data + (size_t)(i - band->i0) * band->rowStride + j0;
    for (int ci = 0; ci < g->inputs; ci++) {
        for (int a = aBegin; a < aEnd; a++) {
            const float *wc = blockWeights + ((size_t)ci * kd + a) * kh * KW * OB;
            const float *xc = rows + ((size_t)ci * kd + a) * band->planeStride;
            for (int u = uBegin; u < uEnd; u++) {
                const float *xrow = xc + (size_t)u * band->rowStride;
                const float *wu = wc + (size_t)u * KW * OB;
                for (int v = 0; v < KW; v++) {
                    CK_V xv[CK_VB];
                    for (int b = 0; b < VB; b++) xv[b] = CK_LOADU(xrow + v + CK_L * b);
                    const float *wv = wu + v * OB;
                    for (int r = 0; r < RB; r++) {
                        CK_V weight = CK_SET1(wv[r]);
                        for (int b = 0; b < VB; b++) acc[r][b] = CK_FMA(weight, xv[b], acc[r][b]);
                    }
                }
            }
        }
    }
    // The masks first, and no early exit: a small loop the compiler unrolls fully lets it keep acc in
    // registers (otherwise it keeps acc in memory and stores every accumulator after every FMA).
    CK_MASK m[CK_VB];
    for (int b = 0; b < VB; b++) m[b] = CK_FN(storeMask)(j0 + CK_L * b, q);
    for (int r = 0; r < RB; r++) {
        if (o0 + r >= g->outputs) continue;
        float *yrow = y + (((size_t)(o0 + r) * pd + z) * p + i) * q + j0;
        for (int b = 0; b < VB; b++) {
            CK_V value = acc[r][b];
            if (accumulate) value = CK_ADD(value, CK_MASKZ_LOADU(m[b], yrow + CK_L * b));
            CK_MASK_STOREU(yrow + CK_L * b, m[b], value);
        }
    }
}

CK_TARGET static void CK_FN(forwardRows)(const float *x, const float *packed, const float *bias, float *y, const ck_conv *g,
                                         int z, int rowBegin, int rowEnd, int accumulate, float *stage) {
    int pd = g->depth + 2 * g->padDepth - g->kd + 1;
    int p = g->height + 2 * g->pad - g->kh + 1, q = g->width + 2 * g->pad - g->kw + 1, kw = g->kw;
    int vectors = (q + CK_L - 1) / CK_L;
    int VB = vectors >= CK_VB ? CK_VB : vectors;
    int blocks = (g->outputs + OB - 1) / OB;
    size_t blockSize = (size_t)g->inputs * g->kd * g->kh * g->kw * OB;
    // Depth taps inside the input.
    int aBegin = g->padDepth - z > 0 ? g->padDepth - z : 0;
    int aEnd = g->depth + g->padDepth - z < g->kd ? g->depth + g->padDepth - z : g->kd;
    int band = stagedBandRows(g);
    if (band > rowEnd - rowBegin) band = rowEnd - rowBegin;
    stagedBand staged = {.rowStride = stagedRowStride(g, q), .planeStride = stagedPlaneStride(g, q, band)};
    // The caller's buffer, from its first 64-byte boundary.
    staged.data = (float *)(((uintptr_t)stage + 63) & ~(uintptr_t)63);
    for (int i0 = rowBegin; i0 < rowEnd; i0 += band) {
        int i1 = i0 + band < rowEnd ? i0 + band : rowEnd;
        staged.i0 = i0;
        CK_FN(stageRows)(x, g, z, aBegin, aEnd, i0, i1, &staged);
        for (int blk = 0; blk < blocks; blk++) {
            const float *bw = packed + blk * blockSize;
            int live = g->outputs - blk * OB;
            for (int i = i0; i < i1; i++) {
                for (int j0 = 0; j0 < q; j0 += CK_L * VB) {
                    int left = (q - j0 + CK_L - 1) / CK_L;
                    int vb = left >= VB ? VB : left;
                    // The common 3-wide kernel with its tap loop unrolled; any other width as a loop. A 3-wide
                    // kernel's last block, when it has 4 or fewer live channels, takes a tile of 4 or 2 (a layer
                    // of 32 outputs: blocks 6 x 5 + 2, not 6 x 6 with 4 padding channels).
#define CK_TILE(V, K, R) CK_FN(forwardTile)(&staged, bw, bias, y, g, pd, p, q, blk * OB, z, aBegin, aEnd, i, j0, accumulate, V, K, R)
#if CK_VB == 4
#define CK_WIDTHS(K, R) switch (vb) { case 4: CK_TILE(4, K, R); break; case 3: CK_TILE(3, K, R); break; case 2: CK_TILE(2, K, R); break; default: CK_TILE(1, K, R); }
#else
#define CK_WIDTHS(K, R) switch (vb) { case 2: CK_TILE(2, K, R); break; default: CK_TILE(1, K, R); }
#endif
                    if (kw != 3 || live > 4) {
                        if (kw == 3) { CK_WIDTHS(3, OB) } else { CK_WIDTHS(kw, OB) }
                    } else if (live > 2) {
                        CK_WIDTHS(3, 4)
                    } else {
                        CK_WIDTHS(3, 2)
                    }
#undef CK_WIDTHS
#undef CK_TILE
                }
            }
        }
    }
}

/// dw[o0 ..< o0 + GB, ci, a, 0..<3, 0..<3] += the products over output rows [i0, i1) of slice z, reading input
/// channel ci's staged rows: row t holds input row i0 - pad + t three times, shifted by v - pad (v = 0, 1, 2),
/// as aligned rows of qs floats with zeros outside the image.
CK_TARGET static void CK_FN(gradientTile)(const float *staged, size_t qs, const float *dy, float *dw, const ck_conv *g, int pd, int p, int q,
                                          int o0, int ci, int a, int z, int i0, int i1) {
    size_t outPlane = (size_t)p * q;
    const float *dyo[CK_GB];
    int live = g->outputs - o0 < CK_GB ? g->outputs - o0 : CK_GB;
    for (int r = 0; r < CK_GB; r++) dyo[r] = dy + ((size_t)(o0 + (r < live ? r : 0)) * pd + z) * outPlane;
    CK_V acc[CK_GB][9];
    for (int r = 0; r < CK_GB; r++)
        for (int t = 0; t < 9; t++) acc[r][t] = CK_ZERO();
    int i = i0;
    for (; i + 1 < i1; i += 2) {
        const float *xs = staged + (size_t)(i - i0) * 3 * qs;
        for (int j0 = 0; j0 < q; j0 += CK_L) {
            CK_MASK m = CK_FN(storeMask)(j0, q);
            CK_V d0[CK_GB], d1[CK_GB];
            for (int r = 0; r < CK_GB; r++) {
                d0[r] = CK_MASKZ_LOADU(m, dyo[r] + (size_t)i * q + j0);
                d1[r] = CK_MASKZ_LOADU(m, dyo[r] + (size_t)(i + 1) * q + j0);
            }
#define CK_PAIR_ROW(K)                                                                                              \
            for (int v = 0; v < 3; v++) {                                                                           \
                CK_V xv = CK_LOAD(xs + ((size_t)(K) * 3 + v) * qs + j0);                                            \
                if ((K) <= 2)                                                                                       \
                    for (int r = 0; r < CK_GB; r++) acc[r][(K) * 3 + v] = CK_FMA(d0[r], xv, acc[r][(K) * 3 + v]);   \
                if ((K) >= 1)                                                                                       \
                    for (int r = 0; r < CK_GB; r++) acc[r][((K) - 1) * 3 + v] = CK_FMA(d1[r], xv, acc[r][((K) - 1) * 3 + v]); \
            }
            CK_PAIR_ROW(0) CK_PAIR_ROW(1) CK_PAIR_ROW(2) CK_PAIR_ROW(3)
#undef CK_PAIR_ROW
        }
    }
    if (i < i1) {
        const float *xs = staged + (size_t)(i - i0) * 3 * qs;
        for (int j0 = 0; j0 < q; j0 += CK_L) {
            CK_MASK m = CK_FN(storeMask)(j0, q);
            CK_V d[CK_GB];
            for (int r = 0; r < CK_GB; r++) d[r] = CK_MASKZ_LOADU(m, dyo[r] + (size_t)i * q + j0);
            for (int t = 0; t < 9; t++) {
                CK_V xv = CK_LOAD(xs + (size_t)t * qs + j0);
                for (int r = 0; r < CK_GB; r++) acc[r][t] = CK_FMA(d[r], xv, acc[r][t]);
            }
        }
    }
    for (int r = 0; r < live; r++) {
        float *dwr = dw + (((size_t)(o0 + r) * g->inputs + ci) * g->kd + a) * 9;
        for (int t = 0; t < 9; t++) dwr[t] += CK_REDUCE(acc[r][t]);
    }
}

/// Stages the input rows [i0 - pad, i1 - pad + 2) of plane xc, three shifted copies each (see gradientTile).
CK_TARGET static void CK_FN(stageShifted)(const float *xc, const ck_conv *g, int i0, int i1, float *staged, size_t qs) {
    int h = g->height, w = g->width, pad = g->pad;
    for (int t = 0; t < i1 - i0 + 2; t++) {
        int r = i0 - pad + t;
        for (int v = 0; v < 3; v++) {
            float *row = staged + ((size_t)t * 3 + v) * qs;
            if (r < 0 || r >= h) {
                for (size_t c = 0; c < qs; c += CK_L) CK_STORE(row + c, CK_ZERO());
                continue;
            }
            const float *xr = xc + (size_t)r * w;
            for (size_t c = 0; c < qs; c += CK_L) {
                int col = (int)c + v - pad;
                CK_V value = col >= 0 && col + CK_L <= w ? CK_LOADU(xr + col) : CK_MASKZ_LOADU(CK_FN(columnMask)(col, w), xr + col);
                CK_STORE(row + c, value);
            }
        }
    }
}

CK_TARGET static void CK_FN(gradientRows)(const float *x, const float *dy, float *dw, const ck_conv *g, int z, int rowBegin, int rowEnd,
                                          float *stage) {
    int pd = g->depth + 2 * g->padDepth - g->kd + 1;
    int p = g->height + 2 * g->pad - 2, q = g->width + 2 * g->pad - 2;
    size_t qs = gradientRowStride(g), plane = (size_t)g->height * g->width;
    // Depth taps inside the input.
    int aBegin = g->padDepth - z > 0 ? g->padDepth - z : 0;
    int aEnd = g->depth + g->padDepth - z < g->kd ? g->depth + g->padDepth - z : g->kd;
    int band = gradientBandRows(g);
    // The caller's buffer, from its first 64-byte boundary.
    float *staged = (float *)(((uintptr_t)stage + 63) & ~(uintptr_t)63);
    int blocks = (g->outputs + CK_GB - 1) / CK_GB;
    for (int i0 = rowBegin; i0 < rowEnd; i0 += band) {
        int i1 = i0 + band < rowEnd ? i0 + band : rowEnd;
        for (int ci = 0; ci < g->inputs; ci++)
            for (int a = aBegin; a < aEnd; a++) {
                CK_FN(stageShifted)(x + ((size_t)ci * g->depth + (z + a - g->padDepth)) * plane, g, i0, i1, staged, qs);
                for (int blk = 0; blk < blocks; blk++) CK_FN(gradientTile)(staged, qs, dy, dw, g, pd, p, q, blk * CK_GB, ci, a, z, i0, i1);
            }
    }
}

#undef CK_FN
#undef CK_CAT
#undef CK_CAT2
