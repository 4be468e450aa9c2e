// Direct convolution with AVX-512 or AVX2 + FMA: see include/CKernels.h for the contract.
//
// The tiles are written once (DirectConvolutionTile.h) and compiled here twice: for
// AVX-512 (vectors of 16 floats, 32 registers) and for AVX2 with FMA (8 floats, 16
// registers), the caller choosing by the CPU's features. The widths differ only where
// registers run out: a forward tile of 6 output channels x up to 4 vectors on AVX-512
// (24 accumulators), x up to 2 on AVX2 (12); a weight-gradient tile of 2 output
// channels x 9 taps on AVX-512 (18 accumulators), of 1 on AVX2 (9). AVX2 has no
// mask registers: its masks are vectors for vmaskmov; the staging copies whole vectors
// with plain loads and only a row's edges through masks, while the tiles' stores and
// the gradient's loads of dy stay masked (straight-line code keeps the accumulators in
// registers). Below, "16 pixels" is one AVX-512 vector (8 with AVX2).
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
#define CK_HAVE_X86 1
#include <immintrin.h>
#else
#define CK_HAVE_X86 0
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

#if CK_HAVE_X86

// AVX-512: 16 lanes, mask registers.
#define CK_V __m512
#define CK_L 16
#define CK_MASK __mmask16
#define CK_VB 4
#define CK_GB 2
#define CK_SUFFIX _avx512
#define CK_TARGET __attribute__((target("avx512f,fma,avx2")))
#define CK_SET1 _mm512_set1_ps
#define CK_ZERO _mm512_setzero_ps
#define CK_LOAD _mm512_load_ps
#define CK_LOADU _mm512_loadu_ps
#define CK_STORE _mm512_store_ps
#define CK_ADD _mm512_add_ps
#define CK_FMA _mm512_fmadd_ps
#define CK_LANES(lo, hi) ((lo) >= (hi) ? (__mmask16)0 : (__mmask16)(((1u << (hi)) - 1u) & ~((1u << (lo)) - 1u)))
#define CK_MASKZ_LOADU(m, p) _mm512_maskz_loadu_ps((m), (p))
#define CK_MASK_STOREU(p, m, v) _mm512_mask_storeu_ps((p), (m), (v))
#define CK_REDUCE _mm512_reduce_add_ps
#include "DirectConvolutionTile.h"
#undef CK_V
#undef CK_L
#undef CK_MASK
#undef CK_VB
#undef CK_GB
#undef CK_SUFFIX
#undef CK_TARGET
#undef CK_SET1
#undef CK_ZERO
#undef CK_LOAD
#undef CK_LOADU
#undef CK_STORE
#undef CK_ADD
#undef CK_FMA
#undef CK_LANES
#undef CK_MASKZ_LOADU
#undef CK_MASK_STOREU
#undef CK_REDUCE

// AVX2 + FMA: 8 lanes; masks are vectors whose lanes' sign bits select.
#define CK_TARGET __attribute__((target("avx2,fma")))

/// The lanes lo <= lane < hi, as vmaskmov's mask.
CK_TARGET static inline __m256i lanes256(int lo, int hi) {
    __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i fromLo = _mm256_cmpgt_epi32(lane, _mm256_set1_epi32(lo - 1));
    __m256i belowHi = _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), lane);
    return _mm256_and_si256(fromLo, belowHi);
}

CK_TARGET static inline float reduce256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#define CK_V __m256
#define CK_L 8
#define CK_MASK __m256i
#define CK_VB 2
#define CK_GB 1
#define CK_SUFFIX _avx2
#define CK_SET1 _mm256_set1_ps
#define CK_ZERO _mm256_setzero_ps
#define CK_LOAD _mm256_load_ps
#define CK_LOADU _mm256_loadu_ps
#define CK_STORE _mm256_store_ps
#define CK_ADD _mm256_add_ps
#define CK_FMA _mm256_fmadd_ps
#define CK_LANES(lo, hi) lanes256((lo), (hi))
#define CK_MASKZ_LOADU(m, p) _mm256_maskload_ps((p), (m))
#define CK_MASK_STOREU(p, m, v) _mm256_maskstore_ps((p), (m), (v))
#define CK_REDUCE reduce256
#include "DirectConvolutionTile.h"

#endif

void ck_direct_weight_gradient(const float *x, const float *dy, float *dw, ck_conv g, int slice, int rowBegin, int rowEnd, float *stage,
                               int lanes) {
#if CK_HAVE_X86
    if (lanes == 16) gradientRows_avx512(x, dy, dw, &g, slice, rowBegin, rowEnd, stage);
    else if (lanes == 8) gradientRows_avx2(x, dy, dw, &g, slice, rowBegin, rowEnd, stage);
#else
    (void)x; (void)dy; (void)dw; (void)g; (void)slice; (void)rowBegin; (void)rowEnd; (void)stage; (void)lanes;
#endif
}

size_t ck_direct_gradient_stage_count(ck_conv g) { return (size_t)(gradientBandRows(&g) + 2) * 3 * gradientRowStride(&g) + 16; }

size_t ck_direct_stage_count(ck_conv g) {
    int q = g.width + 2 * g.pad - g.kw + 1;
    return (size_t)g.inputs * g.kd * stagedPlaneStride(&g, q, stagedBandRows(&g)) + 16;
}

void ck_direct_forward(const float *x, const float *packed, const float *bias, float *y, ck_conv g,
                       int slice, int rowBegin, int rowEnd, int accumulate, float *stage, int lanes) {
#if CK_HAVE_X86
    if (lanes == 16) forwardRows_avx512(x, packed, bias, y, &g, slice, rowBegin, rowEnd, accumulate, stage);
    else if (lanes == 8) forwardRows_avx2(x, packed, bias, y, &g, slice, rowBegin, rowEnd, accumulate, stage);
#else
    (void)x; (void)packed; (void)bias; (void)y; (void)g; (void)slice; (void)rowBegin; (void)rowEnd; (void)accumulate; (void)stage; (void)lanes;
#endif
}
