// Direct convolution with AVX-512: see include/CKernels.h for the contract.
//
// Forward (and the input gradient, which is a forward convolution of the output
// gradient with the flipped, transposed kernel): a register tile of
// CK_OUTPUT_BLOCK output channels x VB vectors of 16 output pixels of one row.
// For every input channel and kernel tap, VB input vectors are loaded once and
// used by 6 broadcast weights: 6*VB FMAs per VB + 6 loads (a layer's last block,
// when it has 4 or fewer channels left, a tile of 4 or 2, not 6 with padding channels). Rows are walked in
// bands: a band's input rows (every channel) are first copied into a staging
// buffer of about 512 KB, with the padding columns as zeros, rows a whole number of
// vectors wide and planes an odd number of cache lines apart. The tile then loads
// without masks, and the 3 rows x C channels it reads at one column do not all
// fall in one cache set, as the image's planes of 2^k pixels would. Every output
// block reads the band from L2. No im2col matrix is built: each input pixel is
// copied about once.
//
// The weight gradient of a 3x3 (or d x 3 x 3) kernel: a register tile of
// CK_GRADIENT_BLOCK output channels x the 9 in-plane taps of one input channel,
// 18 vectors of 16 partial sums. Per 16 output pixels it loads the block's
// output gradients once and the 9 shifted input vectors once, and does 18 FMAs,
// so it runs at the FMA unit's rate where im2col + sgemm, whose GEMM has only
// 16-64 rows, spends as long packing the im2col matrix as multiplying it.
// Output rows go in pairs: their 4 input rows are loaded once for both rows'
// 3 taps each (12 loads for 36 FMAs where single rows take 18 for 36). The input
// rows are read from a staging buffer, one input channel at a time: each row three
// times, shifted by one column left, none and right, with zeros for the padding,
// so that every load is aligned, unmasked and within one cache line (the shifted
// loads from the image itself each span two lines). Every output block reuses the
// channel's staged rows. Against loading from the image, in a single-thread harness:
// 1.1-1.35 times faster on the 2D students' layers with 64 or 128 channels on a
// side, 1.1-1.75 on 3D layers of 32-128 channels, about even on 16-32 channels,
// and 5-20% slower on the 3-channel first layers (a few ms of S2's step).
// Each band's partial sums are reduced across lanes and added into dw.
#include "CKernels.h"

#include <stdint.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#define CK_HAVE_AVX512 1
#include <immintrin.h>
#else
#define CK_HAVE_AVX512 0
#endif

#define OB CK_OUTPUT_BLOCK

size_t ck_direct_packed_count(int outputs, int inputs, int kd, int kh, int kw) {
    size_t blocks = (size_t)(outputs + OB - 1) / OB;
    return blocks * (size_t)inputs * (size_t)kd * (size_t)kh * (size_t)kw * OB;
}

void ck_direct_pack(const float *weight, float *packed, int o, int c, int kd, int kh, int kw, int forInputGradient) {
    // The packed convolution's outputs and inputs.
    int outputs = forInputGradient ? c : o, inputs = forInputGradient ? o : c;
    int blocks = (outputs + OB - 1) / OB;
    for (int b = 0; b < blocks; b++)
        for (int ci = 0; ci < inputs; ci++)
            for (int a = 0; a < kd; a++)
                for (int u = 0; u < kh; u++)
                    for (int v = 0; v < kw; v++)
                        for (int r = 0; r < OB; r++) {
                            int out = b * OB + r;
                            float value = 0;
                            if (out < outputs) {
                                value = forInputGradient
                                    ? weight[((((size_t)ci * c + out) * kd + (kd - 1 - a)) * kh + (kh - 1 - u)) * kw + (kw - 1 - v)]
                                    : weight[((((size_t)out * c + ci) * kd + a) * kh + u) * kw + v];
                            }
                            packed[(((((size_t)b * inputs + ci) * kd + a) * kh + u) * kw + v) * OB + r] = value;
                        }
}

#if CK_HAVE_AVX512

#define CK_TARGET __attribute__((target("avx512f,fma,avx2")))

/// Lanes whose input column col0 + lane lies in [0, w).
CK_TARGET static inline __mmask16 columnMask(int col0, int w) {
    int lo = col0 < 0 ? -col0 : 0;
    int hi = w - col0;
    if (hi > 16) hi = 16;
    if (lo >= hi) return 0;
    uint32_t bits = ((1u << hi) - 1u) & ~((1u << lo) - 1u);
    return (__mmask16)bits;
}

/// Output lanes j0 + lane < q.
CK_TARGET static inline __mmask16 storeMask(int j0, int q) {
    int n = q - j0;
    if (n >= 16) return (__mmask16)0xFFFF;
    if (n <= 0) return 0;
    return (__mmask16)((1u << n) - 1u);
}

/// A band of input rows staged for the forward tile: every input plane (input channel x depth tap) the
/// band reads, rows [i0 - pad, i1 - pad + kh - 1) inside the image and columns [-pad, q - pad + kw - 1), with
/// zeros for the padding columns. Its rows are whole vectors wide, so the tile loads without masks; its planes
/// are an odd number of cache lines apart, so the rows the tile reads at one column fall in different
/// cache sets (the image's own planes, 2^k pixels each, all fall in one). The caller owns the
/// buffer (ck_direct_stage_count floats), one per thread.
typedef struct stagedBand {
    float *data;
    size_t rowStride, planeStride;
    int i0;
} stagedBand;

/// Floats per staged row, plane and band of `rows` output rows.
static size_t stagedRowStride(const ck_conv *g, int q) { return ((size_t)(q + 15) / 16 * 16 + g->kw - 1 + 15) / 16 * 16; }

static size_t stagedPlaneStride(const ck_conv *g, int q, int rows) {
    size_t plane = stagedRowStride(g, q) * (size_t)(rows + g->kh - 1);
    // An odd number of cache lines: consecutive planes then start in different sets.
    return (plane / 16) % 2 ? plane : plane + 16;
}

/// Output rows per staged band: the band (every input channel and depth tap) within about 512 KB.
static int stagedBandRows(const ck_conv *g) {
    int p = g->height + 2 * g->pad - g->kh + 1, q = g->width + 2 * g->pad - g->kw + 1;
    size_t rowBytes = (size_t)g->inputs * g->kd * stagedRowStride(g, q) * sizeof(float);
    int band = (int)((512u << 10) / (rowBytes ? rowBytes : 1)) - (g->kh - 1);
    if (band > p) band = p;
    return band < 1 ? 1 : band;
}

/// Copies the input rows that output rows [i0, i1) of slice z read (depth taps [aBegin, aEnd)) into the band.
CK_TARGET static void stageRows(const float *x, const ck_conv *g, int z, int aBegin, int aEnd, int i0, int i1, stagedBand *band) {
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
                for (size_t c = 0; c < band->rowStride; c += 16) {
                    __m512 value = _mm512_maskz_loadu_ps(columnMask((int)c - pad, w), xr + (int)c - pad);
                    _mm512_store_ps(row + c, value);
                }
            }
        }
}

/// One tile: the first RB channels of output block `blockWeights` (OB channels starting at o0), slice z, row i,
/// columns j0 ..< j0 + 16 VB, reading the staged band.
CK_TARGET __attribute__((always_inline)) static inline void
forwardTile(const stagedBand *band, const float *blockWeights, const float *bias, float *y, const ck_conv *g,
            int pd, int p, int q, int o0, int z, int aBegin, int aEnd, int i, int j0, int accumulate, const int VB, const int KW, const int RB) {
    int h = g->height, kd = g->kd, kh = g->kh, pad = g->pad;
    __m512 acc[OB][4];
    for (int r = 0; r < RB; r++) {
        float b0 = (bias && o0 + r < g->outputs) ? bias[o0 + r] : 0.0f;
        for (int b = 0; b < VB; b++) acc[r][b] = _mm512_set1_ps(b0);
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
                    __m512 xv[4];
                    for (int b = 0; b < VB; b++) xv[b] = _mm512_loadu_ps(xrow + v + 16 * b);
                    const float *wv = wu + v * OB;
                    for (int r = 0; r < RB; r++) {
                        __m512 weight = _mm512_set1_ps(wv[r]);
                        for (int b = 0; b < VB; b++) acc[r][b] = _mm512_fmadd_ps(weight, xv[b], acc[r][b]);
                    }
                }
            }
        }
    }
    for (int r = 0; r < RB; r++) {
        if (o0 + r >= g->outputs) break;
        float *yrow = y + (((size_t)(o0 + r) * pd + z) * p + i) * q + j0;
        for (int b = 0; b < VB; b++) {
            __mmask16 m = storeMask(j0 + 16 * b, q);
            __m512 value = acc[r][b];
            if (accumulate) value = _mm512_add_ps(value, _mm512_maskz_loadu_ps(m, yrow + 16 * b));
            _mm512_mask_storeu_ps(yrow + 16 * b, m, value);
        }
    }
}

CK_TARGET static void forwardRows(const float *x, const float *packed, const float *bias, float *y, const ck_conv *g,
                                  int z, int rowBegin, int rowEnd, int accumulate, float *stage) {
    int pd = g->depth + 2 * g->padDepth - g->kd + 1;
    int p = g->height + 2 * g->pad - g->kh + 1, q = g->width + 2 * g->pad - g->kw + 1, kw = g->kw;
    int vectors = (q + 15) / 16;
    int VB = vectors >= 4 ? 4 : vectors;
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
        stageRows(x, g, z, aBegin, aEnd, i0, i1, &staged);
        for (int blk = 0; blk < blocks; blk++) {
            const float *bw = packed + blk * blockSize;
            int live = g->outputs - blk * OB;
            for (int i = i0; i < i1; i++) {
                for (int j0 = 0; j0 < q; j0 += 16 * VB) {
                    int left = (q - j0 + 15) / 16;
                    int vb = left >= VB ? VB : left;
                    // The common 3-wide kernel with its tap loop unrolled; any other width as a loop. A 3-wide
                    // kernel's last block, when it has 4 or fewer live channels, takes a tile of 4 or 2 (a layer
                    // of 32 outputs: blocks 6 x 5 + 2, not 6 x 6 with 4 padding channels).
#define CK_TILE(V, K, R) forwardTile(&staged, bw, bias, y, g, pd, p, q, blk * OB, z, aBegin, aEnd, i, j0, accumulate, V, K, R)
#define CK_WIDTHS(K, R) switch (vb) { case 4: CK_TILE(4, K, R); break; case 3: CK_TILE(3, K, R); break; case 2: CK_TILE(2, K, R); break; default: CK_TILE(1, K, R); }
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

#define GB CK_GRADIENT_BLOCK

/// dw[o0 ..< o0 + GB, ci, a, 0..<3, 0..<3] += the products over output rows [i0, i1) of slice z, reading input
/// channel ci's staged rows: row t holds input row i0 - pad + t three times, shifted by v - pad (v = 0, 1, 2),
/// as aligned rows of qs floats with zeros outside the image.
CK_TARGET static void gradientTile(const float *staged, size_t qs, const float *dy, float *dw, const ck_conv *g, int pd, int p, int q,
                                   int o0, int ci, int a, int z, int i0, int i1) {
    size_t outPlane = (size_t)p * q;
    const float *dyo[GB];
    int live = g->outputs - o0 < GB ? g->outputs - o0 : GB;
    for (int r = 0; r < GB; r++) dyo[r] = dy + ((size_t)(o0 + (r < live ? r : 0)) * pd + z) * outPlane;
    __m512 acc[GB][9];
    for (int r = 0; r < GB; r++)
        for (int t = 0; t < 9; t++) acc[r][t] = _mm512_setzero_ps();
    int i = i0;
    for (; i + 1 < i1; i += 2) {
        const float *xs = staged + (size_t)(i - i0) * 3 * qs;
        for (int j0 = 0; j0 < q; j0 += 16) {
            __mmask16 m = storeMask(j0, q);
            __m512 d0[GB], d1[GB];
            for (int r = 0; r < GB; r++) {
                d0[r] = _mm512_maskz_loadu_ps(m, dyo[r] + (size_t)i * q + j0);
                d1[r] = _mm512_maskz_loadu_ps(m, dyo[r] + (size_t)(i + 1) * q + j0);
            }
#define CK_PAIR_ROW(K)                                                                                              \
            for (int v = 0; v < 3; v++) {                                                                           \
                __m512 xv = _mm512_load_ps(xs + ((size_t)(K) * 3 + v) * qs + j0);                                   \
                if ((K) <= 2)                                                                                       \
                    for (int r = 0; r < GB; r++) acc[r][(K) * 3 + v] = _mm512_fmadd_ps(d0[r], xv, acc[r][(K) * 3 + v]); \
                if ((K) >= 1)                                                                                       \
                    for (int r = 0; r < GB; r++) acc[r][((K) - 1) * 3 + v] = _mm512_fmadd_ps(d1[r], xv, acc[r][((K) - 1) * 3 + v]); \
            }
            CK_PAIR_ROW(0) CK_PAIR_ROW(1) CK_PAIR_ROW(2) CK_PAIR_ROW(3)
#undef CK_PAIR_ROW
        }
    }
    if (i < i1) {
        const float *xs = staged + (size_t)(i - i0) * 3 * qs;
        for (int j0 = 0; j0 < q; j0 += 16) {
            __mmask16 m = storeMask(j0, q);
            __m512 d[GB];
            for (int r = 0; r < GB; r++) d[r] = _mm512_maskz_loadu_ps(m, dyo[r] + (size_t)i * q + j0);
            for (int t = 0; t < 9; t++) {
                __m512 xv = _mm512_load_ps(xs + (size_t)t * qs + j0);
                for (int r = 0; r < GB; r++) acc[r][t] = _mm512_fmadd_ps(d[r], xv, acc[r][t]);
            }
        }
    }
    for (int r = 0; r < live; r++) {
        float *dwr = dw + (((size_t)(o0 + r) * g->inputs + ci) * g->kd + a) * 9;
        for (int t = 0; t < 9; t++) dwr[t] += _mm512_reduce_add_ps(acc[r][t]);
    }
}

/// Stages the input rows [i0 - pad, i1 - pad + 2) of plane xc, three shifted copies each (see gradientTile).
CK_TARGET static void stageShifted(const float *xc, const ck_conv *g, int i0, int i1, float *staged, size_t qs) {
    int h = g->height, w = g->width, pad = g->pad;
    for (int t = 0; t < i1 - i0 + 2; t++) {
        int r = i0 - pad + t;
        for (int v = 0; v < 3; v++) {
            float *row = staged + ((size_t)t * 3 + v) * qs;
            if (r < 0 || r >= h) {
                for (size_t c = 0; c < qs; c += 16) _mm512_store_ps(row + c, _mm512_setzero_ps());
                continue;
            }
            const float *xr = xc + (size_t)r * w;
            for (size_t c = 0; c < qs; c += 16) {
                int col = (int)c + v - pad;
                _mm512_store_ps(row + c, _mm512_maskz_loadu_ps(columnMask(col, w), xr + col));
            }
        }
    }
}

/// Floats per staged row of the weight gradient: the output's columns, whole vectors.
static size_t gradientRowStride(const ck_conv *g) { return (size_t)(g->width + 2 * g->pad - 2 + 15) / 16 * 16; }

/// Output rows per band of the weight gradient: the band's output-gradient rows (every output channel) within
/// about 256 KB, so that they stay in L2 while every input channel's staged rows pass, and at least 2048
/// pixels, so that the reductions across lanes stay a small share; no more than the output's rows.
static int gradientBandRows(const ck_conv *g) {
    int p = g->height + 2 * g->pad - 2, q = g->width + 2 * g->pad - 2;
    size_t rowBytes = (size_t)g->outputs * q * sizeof(float);
    int band = (int)((256u << 10) / (rowBytes ? rowBytes : 1));
    int least = (2048 + q - 1) / q;
    if (band < least) band = least;
    return band < p ? band : (p > 1 ? p : 1);
}

CK_TARGET static void gradientRows(const float *x, const float *dy, float *dw, const ck_conv *g, int z, int rowBegin, int rowEnd,
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
    int blocks = (g->outputs + GB - 1) / GB;
    for (int i0 = rowBegin; i0 < rowEnd; i0 += band) {
        int i1 = i0 + band < rowEnd ? i0 + band : rowEnd;
        for (int ci = 0; ci < g->inputs; ci++)
            for (int a = aBegin; a < aEnd; a++) {
                stageShifted(x + ((size_t)ci * g->depth + (z + a - g->padDepth)) * plane, g, i0, i1, staged, qs);
                for (int blk = 0; blk < blocks; blk++) gradientTile(staged, qs, dy, dw, g, pd, p, q, blk * GB, ci, a, z, i0, i1);
            }
    }
}

#endif

void ck_direct_weight_gradient(const float *x, const float *dy, float *dw, ck_conv g, int slice, int rowBegin, int rowEnd, float *stage) {
#if CK_HAVE_AVX512
    gradientRows(x, dy, dw, &g, slice, rowBegin, rowEnd, stage);
#else
    (void)x; (void)dy; (void)dw; (void)g; (void)slice; (void)rowBegin; (void)rowEnd; (void)stage;
#endif
}

size_t ck_direct_gradient_stage_count(ck_conv g) {
#if CK_HAVE_AVX512
    return (size_t)(gradientBandRows(&g) + 2) * 3 * gradientRowStride(&g) + 16;
#else
    (void)g;
    return 0;
#endif
}

size_t ck_direct_stage_count(ck_conv g) {
#if CK_HAVE_AVX512
    int q = g.width + 2 * g.pad - g.kw + 1;
    return (size_t)g.inputs * g.kd * stagedPlaneStride(&g, q, stagedBandRows(&g)) + 16;
#else
    (void)g;
    return 0;
#endif
}

void ck_direct_forward(const float *x, const float *packed, const float *bias, float *y, ck_conv g,
                       int slice, int rowBegin, int rowEnd, int accumulate, float *stage) {
#if CK_HAVE_AVX512
    forwardRows(x, packed, bias, y, &g, slice, rowBegin, rowEnd, accumulate, stage);
#else
    (void)x; (void)packed; (void)bias; (void)y; (void)g; (void)slice; (void)rowBegin; (void)rowEnd; (void)accumulate; (void)stage;
#endif
}
