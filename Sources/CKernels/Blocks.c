// The transposed convolution whose kernel equals its stride (the U-Net's 2x2, stride 2
// up-sampling, and no padding): every input pixel writes its own s x s block of
// output pixels, so the op is one matrix product (weight^T x input, in sgemm) and a
// permutation of its result into the output: no zero-filled output, no adds, no
// per-pixel bounds checks. See include/CKernels.h. Plain C over contiguous rows; the
// s == 2 case is written out so that the compiler vectorises its interleaving.
#include "CKernels.h"

/// Row u of block row i of channel c in y [channels, s*p, s*q], and the s rows of col
/// [channels * s * s, (i1 - i0) * q] it interleaves: col row ((c*s + u)*s + v).
static inline float *blockRow(float *y, int c, int s, int p, int q, int i, int u) {
    return y + (((size_t)c * s * p) + (size_t)s * i + u) * (size_t)s * q;
}

void ck_blocks_scatter(const float *col, const float *bias, float *y, int channels, int s, int p, int q, int i0, int i1) {
    size_t cols = (size_t)(i1 - i0) * q;
    for (int c = 0; c < channels; c++) {
        float b = bias ? bias[c] : 0.0f;
        for (int i = i0; i < i1; i++)
            for (int u = 0; u < s; u++) {
                float *d = blockRow(y, c, s, p, q, i, u);
                const float *src = col + ((size_t)(c * s + u) * s) * cols + (size_t)(i - i0) * q;
                if (s == 2) {
                    const float *a = src, *e = src + cols;
                    for (int j = 0; j < q; j++) {
                        d[2 * j] = a[j] + b;
                        d[2 * j + 1] = e[j] + b;
                    }
                } else {
                    for (int v = 0; v < s; v++)
                        for (int j = 0; j < q; j++) d[(size_t)s * j + v] = src[(size_t)v * cols + j] + b;
                }
            }
    }
}

void ck_blocks_gather(const float *y, float *col, int channels, int s, int p, int q, int i0, int i1) {
    size_t cols = (size_t)(i1 - i0) * q;
    for (int c = 0; c < channels; c++)
        for (int i = i0; i < i1; i++)
            for (int u = 0; u < s; u++) {
                const float *d = blockRow((float *)y, c, s, p, q, i, u);
                float *dst = col + ((size_t)(c * s + u) * s) * cols + (size_t)(i - i0) * q;
                if (s == 2) {
                    float *a = dst, *e = dst + cols;
                    for (int j = 0; j < q; j++) {
                        a[j] = d[2 * j];
                        e[j] = d[2 * j + 1];
                    }
                } else {
                    for (int v = 0; v < s; v++)
                        for (int j = 0; j < q; j++) dst[(size_t)v * cols + j] = d[(size_t)s * j + v];
                }
            }
}
