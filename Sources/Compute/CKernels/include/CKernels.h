// Convolution kernels in C: the direct convolution with AVX-512 or AVX2 intrinsics, for
// the narrow layers that starve a GEMM (few output channels at high resolution:
// the students' 16-64 channels, the teacher's first and last levels), and the
// transforms of Winograd F(2x2, 3x3) for the deep layers (plain C, any CPU),
// and the permutations of the up-sampling transposed convolution (plain C).
//
// Layouts are Tensor's: NCHW images and NCDHW volumes, PyTorch's weight [O, C, kh, kw]
// or [O, C, kd, kh, kw]. Stride 1, dilation 1, symmetric zero padding, kernels square
// in-plane up to 7 x 7 (any depth up to 7: nnU-Net's 1x3x3 and 3x3x3). The Swift side
// (Tensor/Kernels/DirectConvolution.swift) chooses these kernels per layer,
// keeps the im2col + sgemm path for the other layers and for CPUs without
// AVX2 and FMA, and holds the naive references the tests compare with.
#ifndef DISTILLERY_CKERNELS_H
#define DISTILLERY_CKERNELS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Output channels per register block of the forward kernel.
#define CK_OUTPUT_BLOCK 6


/// The geometry of one direct convolution: input [inputs, depth, height, width],
/// kernel kd x kh x kw (kh == kw), zero padding padDepth along depth and pad along
/// height and width, stride 1. A 2D convolution is depth 1, kd 1, padDepth 0.
typedef struct ck_conv {
    int inputs, depth, height, width;
    int outputs, kd, kh, kw;
    int padDepth, pad;
} ck_conv;

/// Floats in the packed weight of a convolution with `outputs` output channels,
/// `inputs` input channels and a kd x kh x kw kernel.
size_t ck_direct_packed_count(int outputs, int inputs, int kd, int kh, int kw);

/// Packs weight [O, C, kd, kh, kw] for `ck_direct_forward`, as blocks of
/// CK_OUTPUT_BLOCK output channels (zero-filled past O).
/// forInputGradient = 0: the convolution itself (outputs O, inputs C).
/// forInputGradient = 1: the convolution that computes the input gradient from
/// the output gradient (outputs C, inputs O, kernel flipped along every axis).
void ck_direct_pack(const float *weight, float *packed, int o, int c, int kd, int kh, int kw, int forInputGradient);

/// One volume: y[o, slice, i, j] (+)= bias[o] + sum_{c,a,u,v} w[o, c, a, u, v] * x[c, slice + a - padDepth, i + u - pad, j + v - pad],
/// for output rows [rowBegin, rowEnd) of output slice `slice`. x is [inputs, depth, height, width]; y is
/// [outputs, depth + 2 padDepth - kd + 1, height + 2 pad - kh + 1, width + 2 pad - kw + 1].
/// accumulate = 1 adds into y instead of overwriting it; bias may be NULL. `stage` is the calling
/// thread's scratch buffer of ck_direct_stage_count(g) floats (the kernel copies bands of x into it).
/// `lanes` picks the instruction set: 16 runs the AVX-512 kernel, 8 the AVX2 + FMA one (the caller
/// checks that the CPU has it); any other value does nothing.
void ck_direct_forward(const float *x, const float *packed, const float *bias, float *y, ck_conv g,
                       int slice, int rowBegin, int rowEnd, int accumulate, float *stage, int lanes);

/// Floats of the scratch buffer ck_direct_forward needs for geometry g.
size_t ck_direct_stage_count(ck_conv g);

/// The weight gradient of a kernel kd x 3 x 3 over one volume: dw[o, c, a, u, v] += sum over output rows
/// [rowBegin, rowEnd) of output slice `slice` of dy[o, slice, i, j] * x[c, slice + a - padDepth, i + u - pad, j + v - pad],
/// for x and dy laid out as in ck_direct_forward and dw [outputs, inputs, kd, 3, 3]. g is the forward convolution's geometry.
/// `stage` is the calling thread's scratch buffer of ck_direct_gradient_stage_count(g) floats (the kernel stages rows of x in it).
/// `lanes` as in ck_direct_forward.
void ck_direct_weight_gradient(const float *x, const float *dy, float *dw, ck_conv g, int slice, int rowBegin, int rowEnd, float *stage,
                               int lanes);

/// Floats of the scratch buffer ck_direct_weight_gradient needs for geometry g.
size_t ck_direct_gradient_stage_count(ck_conv g);

// Winograd F(2x2, 3x3) (Winograd.c): the transforms around 16 matrix products the
// caller runs on sgemm, for 3x3 convolutions with stride 1 and zero padding up to 2:
// the forward pass, the input gradient and the weight gradient.
// An output of p x q is cut into tiles of 2 x 2: tilesX = (q + 1) / 2 per row.
// A band of tile rows [tileRowBegin, tileRowEnd) holds tiles = rows * tilesX tiles.

/// U[16][outputs][inputs], the kernels in the transform domain (G g G^T), from weight [O, C, 3, 3].
/// forInputGradient = 0: the convolution (outputs O, inputs C); 1: the one that computes the
/// input gradient from the output gradient (outputs C, inputs O, kernel flipped).
void ck_winograd_weights(const float *weight, float *u, int o, int c, int forInputGradient);

/// V[16][inputs][tiles] (B^T d B) for the band's tiles of one image x [inputs, height, width]
/// with zero padding `pad` (the tile at (tr, tx) reads rows 2 tr - pad ..< 2 tr - pad + 4),
/// written to columns offset + (tr - tileRowBegin) * tilesX + tx of V's rows of `tiles`
/// columns (so that the weight gradient can gather tiles of several images in one V).
void ck_winograd_input(const float *x, float *v, int inputs, int height, int width, int pad, int tilesX,
                       int tileRowBegin, int tileRowEnd, int tiles, int offset);

/// E[16][outputs][tiles] (A e A^T) for the band's 2 x 2 tiles of one image's output gradient
/// dy [outputs, p, q] (zero past its last row and column), placed as in ck_winograd_input.
void ck_winograd_gradient(const float *dy, float *e, int outputs, int p, int q, int tilesX,
                          int tileRowBegin, int tileRowEnd, int tiles, int offset);

/// dw [o, c, 3, 3] += G^T M G for M[16][o][c], the products of E and V summed over tiles.
void ck_winograd_weight_gradient(const float *m, float *dw, int o, int c);

/// The band's output rows of y [outputs, p, q] from M[16][outputs][tiles] (A^T M A), plus
/// bias (may be NULL); accumulate = 1 adds into y instead of overwriting it.
void ck_winograd_output(const float *m, const float *bias, float *y, int outputs, int p, int q, int tilesX,
                        int tileRowBegin, int tileRowEnd, int accumulate);

// The transposed convolution whose kernel equals its stride, without padding (Blocks.c), over
// images or volumes: input [.., depth, p, q] (depth 1 for images), output [channels, sd*depth,
// sh*p, sw*q] (sd 1 for images). Each input voxel's sd x sh x sw output block comes from rows
// ((c*sd + a)*sh + u)*sw + v of a matrix col [channels * sd * sh * sw, (r1 - r0) * q] over the
// input rows r = d*p + i in [r0, r1).
typedef struct ck_blocks {
    int channels, sd, sh, sw, depth, p, q;
} ck_blocks;

/// y[c, sd*d + a, sh*i + u, sw*j + v] = col[((c*sd + a)*sh + u)*sw + v, (r - r0)*q + j] + bias[c] (bias may be NULL),
/// for r = d*p + i in [r0, r1).
void ck_blocks_scatter(const float *col, const float *bias, float *y, ck_blocks b, int r0, int r1);

/// The adjoint's gather: col[((c*sd + a)*sh + u)*sw + v, (r - r0)*q + j] = y[c, sd*d + a, sh*i + u, sw*j + v], for r in [r0, r1).
void ck_blocks_gather(const float *y, float *col, ck_blocks b, int r0, int r1);


// What this CPU is (CPUFeatures.c): CPUID's vendor, family, model and brand, and the vector
// extensions it has that the operating system also enables (XCR0), as CK_* bits.
enum {
    CK_SSE42 = 1 << 0, CK_AVX = 1 << 1, CK_FMA = 1 << 2, CK_F16C = 1 << 3, CK_AVX2 = 1 << 4,
    CK_AVX512F = 1 << 5, CK_AVX512DQ = 1 << 6, CK_AVX512BW = 1 << 7, CK_AVX512VL = 1 << 8,
    CK_AVX512VNNI = 1 << 9, CK_AVX512BF16 = 1 << 10, CK_AMX_TILE = 1 << 11, CK_AMX_BF16 = 1 << 12,
};

typedef struct ck_cpu {
    char vendor[13];
    char brand[49];
    int family, model, stepping;
    unsigned long long features;
} ck_cpu;

/// Fills `cpu` from CPUID (all zero off x86-64).
void ck_cpu_identify(ck_cpu *cpu);

/// OpenBLAS's name for the core whose kernels it runs ("Zen", "SkylakeX", "Prescott"), or NULL
/// when the BLAS linked in does not say.
const char *ck_blas_core(void);

/// OpenBLAS's build configuration ("OpenBLAS 0.3.21 DYNAMIC_ARCH ..."), or NULL.
const char *ck_blas_config(void);

/// Makes a dynamic-architecture OpenBLAS run `core`'s kernels, as OPENBLAS_CORETYPE would
/// have at start-up. Call before any BLAS call is under way. 0 when the BLAS cannot switch.
int ck_blas_switch_core(const char *core);

#ifdef __cplusplus
}
#endif

#endif
