// Direct convolution kernels in C with AVX-512 intrinsics, for the narrow layers
// that starve a GEMM (few output channels at high resolution: the students'
// 16-64 channels, the teacher's first and last levels).
//
// Layouts are Tensor's: NCHW images, PyTorch's weight [O, C, kh, kw]. Stride 1,
// dilation 1, symmetric zero padding, square kernels up to 7 x 7. The Swift side
// (Tensor/Kernels/DirectConvolution.swift) chooses these kernels per layer,
// keeps the im2col + sgemm path for the other layers and for CPUs without
// AVX-512, and holds the naive references the tests compare with.
#ifndef DISTILLERY_CKERNELS_H
#define DISTILLERY_CKERNELS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Output channels per register block of the forward kernel.
#define CK_OUTPUT_BLOCK 6

/// 1 when this CPU (and this build) runs the AVX-512 kernels, else 0.
int ck_direct_available(void);

/// Floats in the packed weight of a convolution with `outputs` output channels,
/// `inputs` input channels and a kh x kw kernel.
size_t ck_direct_packed_count(int outputs, int inputs, int kh, int kw);

/// Packs weight [O, C, kh, kw] for `ck_direct_forward`, as blocks of
/// CK_OUTPUT_BLOCK output channels (zero-filled past O).
/// forInputGradient = 0: the convolution itself (outputs O, inputs C).
/// forInputGradient = 1: the convolution that computes the input gradient from
/// the output gradient (outputs C, inputs O, kernel flipped in both axes).
void ck_direct_pack(const float *weight, float *packed, int o, int c, int kh, int kw, int forInputGradient);

/// One image: y[o, i, j] (+)= bias[o] + sum_{c,u,v} w[o, c, u, v] * x[c, i + u - pad, j + v - pad],
/// for output rows [rowBegin, rowEnd). x is [inputs, h, w]; y is [outputs, h + 2 pad - kh + 1, w + 2 pad - kw + 1].
/// accumulate = 1 adds into y instead of overwriting it; bias may be NULL.
void ck_direct_forward(const float *x, const float *packed, const float *bias, float *y,
                       int inputs, int h, int w, int outputs, int kh, int kw, int pad,
                       int rowBegin, int rowEnd, int accumulate);

#ifdef __cplusplus
}
#endif

#endif
