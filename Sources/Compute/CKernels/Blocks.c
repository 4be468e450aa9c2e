// The transposed convolution whose kernel equals its stride (the U-Net's 2x2 or 2x2x2, stride 2
// up-sampling, and no padding): every input voxel writes its own block of output voxels, so
// the op is one matrix product (weight^T x input, in sgemm) and a permutation of its result
// into the output: no zero-filled output, no adds, no per-voxel bounds checks. See
// include/CKernels.h. Plain C over contiguous rows; a stride of 2 along rows is written out so
// that the compiler vectorises its interleaving.
#include "CKernels.h"

/// Output row (a, u) of the block row of input row r (= d*p + i) in channel c of y, and the
/// first of the sw rows of col that interleave into it (col row ((c*sd + a)*sh + u)*sw).
static inline float *blockRow(float *y, const ck_blocks *b, int c, int r, int a, int u) {
    int d = r / b->p, i = r % b->p;
    size_t plane = (size_t)b->sh * b->p, row = (size_t)b->sw * b->q;
    return y + (((size_t)c * b->sd * b->depth + (size_t)b->sd * d + a) * plane + (size_t)b->sh * i + u) * row;
}

static inline size_t colRow(const ck_blocks *b, int c, int a, int u) { return (((size_t)c * b->sd + a) * b->sh + u) * b->sw; }

void ck_blocks_scatter(const float *col, const float *bias, float *y, ck_blocks b, int r0, int r1) {
    size_t cols = (size_t)(r1 - r0) * b.q;
    int q = b.q, sw = b.sw;
    for (int c = 0; c < b.channels; c++) {
        float beta = bias ? bias[c] : 0.0f;
        for (int a = 0; a < b.sd; a++)
            for (int r = r0; r < r1; r++)
                for (int u = 0; u < b.sh; u++) {
                    float *dst = blockRow(y, &b, c, r, a, u);
                    const float *src = col + colRow(&b, c, a, u) * cols + (size_t)(r - r0) * q;
                    if (sw == 2) {
                        const float *even = src, *odd = src + cols;
                        for (int j = 0; j < q; j++) {
                            dst[2 * j] = even[j] + beta;
                            dst[2 * j + 1] = odd[j] + beta;
                        }
                    } else {
                        for (int v = 0; v < sw; v++)
                            for (int j = 0; j < q; j++) dst[(size_t)sw * j + v] = src[(size_t)v * cols + j] + beta;
                    }
                }
    }
}

void ck_blocks_gather(const float *y, float *col, ck_blocks b, int r0, int r1) {
    size_t cols = (size_t)(r1 - r0) * b.q;
    int q = b.q, sw = b.sw;
    for (int c = 0; c < b.channels; c++)
        for (int a = 0; a < b.sd; a++)
            for (int r = r0; r < r1; r++)
                for (int u = 0; u < b.sh; u++) {
                    const float *src = blockRow((float *)y, &b, c, r, a, u);
                    float *dst = col + colRow(&b, c, a, u) * cols + (size_t)(r - r0) * q;
                    if (sw == 2) {
                        float *even = dst, *odd = dst + cols;
                        for (int j = 0; j < q; j++) {
                            even[j] = src[2 * j];
                            odd[j] = src[2 * j + 1];
                        }
                    } else {
                        for (int v = 0; v < sw; v++)
                            for (int j = 0; j < q; j++) dst[(size_t)v * cols + j] = src[(size_t)sw * j + v];
                    }
                }
}
