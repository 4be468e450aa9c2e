// Winograd F(2x2, 3x3) convolution: the transforms. See include/CKernels.h.
//
// A 3x3 convolution with stride 1 computes each 2x2 block of outputs from a
// 4x4 block of inputs. Winograd's minimal filtering algorithm does it with 16
// multiplications instead of 36: the input tile d and the kernel g are taken
// to a 4x4 transform domain (V = B^T d B, U = G g G^T), multiplied point by
// point, and brought back (Y = A^T (U . V) A). Summed over input channels, the
// point-by-point products are 16 matrix products U[xi] (outputs x inputs) by
// V[xi] (inputs x tiles), which the caller runs on sgemm: 2.25 times fewer
// multiplications than im2col + sgemm, for the cost of the transforms, which
// read and write memory and multiply by 0, 1 and 1/2 only (so they lose little
// precision). The matrices (Lavin and Gray, 2016):
//
//   B^T = [1  0 -1  0]   G = [1    0    0  ]   A^T = [1  1  1  0]
//         [0  1  1  0]       [1/2  1/2  1/2]         [0  1 -1 -1]
//         [0 -1  1  0]       [1/2 -1/2  1/2]
//         [0  1  0 -1]       [0    0    1  ]
//
// The loops are plain C over contiguous rows, so the compiler vectorises them
// for any x86-64 or arm64 CPU; no intrinsics.
#include "CKernels.h"

#include <stdlib.h>
#include <string.h>

void ck_winograd_weights(const float *weight, float *u, int o, int c, int forInputGradient) {
    // The convolution whose weights these are: forward (outputs O, inputs C) or
    // the input gradient's (outputs C, inputs O, kernel flipped along both axes).
    int outputs = forInputGradient ? c : o, inputs = forInputGradient ? o : c;
    size_t plane = (size_t)outputs * inputs;
    for (int out = 0; out < outputs; out++)
        for (int in = 0; in < inputs; in++) {
            float g[3][3];
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++)
                    g[a][b] = forInputGradient ? weight[(((size_t)in * c + out) * 3 + (2 - a)) * 3 + (2 - b)]
                                               : weight[(((size_t)out * c + in) * 3 + a) * 3 + b];
            // G g: 4 x 3, then (G g) G^T: 4 x 4.
            float t[4][3];
            for (int b = 0; b < 3; b++) {
                t[0][b] = g[0][b];
                t[1][b] = 0.5f * (g[0][b] + g[1][b] + g[2][b]);
                t[2][b] = 0.5f * (g[0][b] - g[1][b] + g[2][b]);
                t[3][b] = g[2][b];
            }
            for (int a = 0; a < 4; a++) {
                float *dst = u + (size_t)a * 4 * plane + (size_t)out * inputs + in;
                dst[0 * plane] = t[a][0];
                dst[1 * plane] = 0.5f * (t[a][0] + t[a][1] + t[a][2]);
                dst[2 * plane] = 0.5f * (t[a][0] - t[a][1] + t[a][2]);
                dst[3 * plane] = t[a][2];
            }
        }
}

void ck_winograd_input(const float *x, float *v, int inputs, int height, int width, int pad, int tilesX,
                       int tileRowBegin, int tileRowEnd, int tiles, int offset) {
    size_t point = (size_t)inputs * tiles;  // floats per transform point xi
    int padded = 2 * tilesX + 2;            // input columns the tile row reads, from column -pad
    // Row buffers on the heap: a wide image's would not fit a worker thread's stack.
    float *buffer = malloc(sizeof(float) * 8 * (size_t)padded);
    if (!buffer) return;
    float *d[4], *r[4];
    for (int i = 0; i < 4; i++) d[i] = buffer + (size_t)i * padded, r[i] = buffer + (size_t)(4 + i) * padded;
    int left = pad, right = width + pad < padded ? width + pad : padded;  // padded columns that hold input
    for (int ch = 0; ch < inputs; ch++) {
        const float *xc = x + (size_t)ch * height * width;
        for (int tr = tileRowBegin; tr < tileRowEnd; tr++) {
            // The four input rows of this tile row, zero outside the image.
            for (int i = 0; i < 4; i++) {
                int y = 2 * tr - pad + i;
                if (y < 0 || y >= height) {
                    memset(d[i], 0, sizeof(float) * padded);
                    continue;
                }
                memset(d[i], 0, sizeof(float) * left);
                memcpy(d[i] + left, xc + (size_t)y * width, sizeof(float) * (right - left));
                if (right < padded) memset(d[i] + right, 0, sizeof(float) * (padded - right));
            }
            // B^T d along the rows (every column at once), then d B along the columns, tile by tile.
            for (int k = 0; k < padded; k++) {
                r[0][k] = d[0][k] - d[2][k];
                r[1][k] = d[1][k] + d[2][k];
                r[2][k] = d[2][k] - d[1][k];
                r[3][k] = d[1][k] - d[3][k];
            }
            size_t t0 = (size_t)offset + (size_t)(tr - tileRowBegin) * tilesX;
            for (int a = 0; a < 4; a++) {
                const float *row = r[a];
                float *v0 = v + (size_t)(4 * a) * point + (size_t)ch * tiles + t0;
                float *v1 = v0 + point, *v2 = v1 + point, *v3 = v2 + point;
                for (int tx = 0; tx < tilesX; tx++) {
                    float p0 = row[2 * tx], p1 = row[2 * tx + 1], p2 = row[2 * tx + 2], p3 = row[2 * tx + 3];
                    v0[tx] = p0 - p2;
                    v1[tx] = p1 + p2;
                    v2[tx] = p2 - p1;
                    v3[tx] = p1 - p3;
                }
            }
        }
    }
    free(buffer);
}

void ck_winograd_output(const float *m, const float *bias, float *y, int outputs, int p, int q, int tilesX,
                        int tileRowBegin, int tileRowEnd, int accumulate) {
    int tiles = (tileRowEnd - tileRowBegin) * tilesX;
    size_t point = (size_t)outputs * tiles;
    int width = 2 * tilesX;
    float *top = malloc(sizeof(float) * 2 * (size_t)width);
    if (!top) return;
    float *bottom = top + width;
    for (int o = 0; o < outputs; o++) {
        float b = bias ? bias[o] : 0.0f;
        for (int tr = tileRowBegin; tr < tileRowEnd; tr++) {
            const float *mo = m + (size_t)o * tiles + (size_t)(tr - tileRowBegin) * tilesX;
            for (int tx = 0; tx < tilesX; tx++) {
                float s[2][4];
                for (int j = 0; j < 4; j++) {
                    float m0 = mo[(size_t)j * point + tx], m1 = mo[(size_t)(4 + j) * point + tx];
                    float m2 = mo[(size_t)(8 + j) * point + tx], m3 = mo[(size_t)(12 + j) * point + tx];
                    s[0][j] = m0 + m1 + m2;
                    s[1][j] = m1 - m2 - m3;
                }
                top[2 * tx] = s[0][0] + s[0][1] + s[0][2] + b;
                top[2 * tx + 1] = s[0][1] - s[0][2] - s[0][3] + b;
                bottom[2 * tx] = s[1][0] + s[1][1] + s[1][2] + b;
                bottom[2 * tx + 1] = s[1][1] - s[1][2] - s[1][3] + b;
            }
            // The tile row's two output rows (the second past the last row of an odd height is dropped).
            for (int i = 0; i < 2 && 2 * tr + i < p; i++) {
                const float *src = i == 0 ? top : bottom;
                float *dst = y + ((size_t)o * p + 2 * tr + i) * q;
                if (accumulate)
                    for (int j = 0; j < q; j++) dst[j] += src[j];
                else
                    memcpy(dst, src, sizeof(float) * q);
            }
        }
    }
    free(top);
}

// The weight gradient, by the same identity read the other way: with E a 2 x 2 tile of the
// output gradient and D the 4 x 4 input tile under it,
//   sum_{i,j} E[i][j] D[i + u][j + v] = (G^T [(A E A^T) . (B^T D B)] G)[u][v],
// so dW = G^T (sum over tiles of (A E A^T) . (B^T D B)) G: the input tiles are transformed
// as in the forward pass, the gradient tiles by A, and the sum over tiles is 16 products.

void ck_winograd_gradient(const float *dy, float *e, int outputs, int p, int q, int tilesX,
                          int tileRowBegin, int tileRowEnd, int tiles, int offset) {
    size_t point = (size_t)outputs * tiles;
    int width = 2 * tilesX;
    float *buffer = malloc(sizeof(float) * 8 * (size_t)width);
    if (!buffer) return;
    float *rows[2] = {buffer, buffer + width}, *r[4];
    for (int i = 0; i < 4; i++) r[i] = buffer + (size_t)(2 + i) * width;
    for (int o = 0; o < outputs; o++) {
        const float *dyo = dy + (size_t)o * p * q;
        for (int tr = tileRowBegin; tr < tileRowEnd; tr++) {
            // The tile row's two gradient rows, zero past the output's last row and column.
            for (int i = 0; i < 2; i++) {
                int y = 2 * tr + i;
                if (y < p) {
                    memcpy(rows[i], dyo + (size_t)y * q, sizeof(float) * q);
                    if (q < width) memset(rows[i] + q, 0, sizeof(float) * (width - q));
                } else {
                    memset(rows[i], 0, sizeof(float) * width);
                }
            }
            // A e along the rows, every column at once, then along the columns, tile by tile.
            for (int k = 0; k < width; k++) {
                r[0][k] = rows[0][k];
                r[1][k] = rows[0][k] + rows[1][k];
                r[2][k] = rows[0][k] - rows[1][k];
                r[3][k] = -rows[1][k];
            }
            size_t t0 = (size_t)offset + (size_t)(tr - tileRowBegin) * tilesX;
            for (int a = 0; a < 4; a++) {
                const float *row = r[a];
                float *e0 = e + (size_t)(4 * a) * point + (size_t)o * tiles + t0;
                float *e1 = e0 + point, *e2 = e1 + point, *e3 = e2 + point;
                for (int tx = 0; tx < tilesX; tx++) {
                    float g0 = row[2 * tx], g1 = row[2 * tx + 1];
                    e0[tx] = g0;
                    e1[tx] = g0 + g1;
                    e2[tx] = g0 - g1;
                    e3[tx] = -g1;
                }
            }
        }
    }
    free(buffer);
}

void ck_winograd_weight_gradient(const float *m, float *dw, int o, int c) {
    size_t plane = (size_t)o * c;
    for (size_t k = 0; k < plane; k++) {
        float mm[4][4], t[3][4];
        for (int xi = 0; xi < 16; xi++) mm[xi / 4][xi % 4] = m[(size_t)xi * plane + k];
        // G^T M: 3 x 4, then (G^T M) G: 3 x 3.
        for (int b = 0; b < 4; b++) {
            t[0][b] = mm[0][b] + 0.5f * (mm[1][b] + mm[2][b]);
            t[1][b] = 0.5f * (mm[1][b] - mm[2][b]);
            t[2][b] = 0.5f * (mm[1][b] + mm[2][b]) + mm[3][b];
        }
        float *out = dw + k * 9;
        for (int a = 0; a < 3; a++) {
            out[a * 3 + 0] += t[a][0] + 0.5f * (t[a][1] + t[a][2]);
            out[a * 3 + 1] += 0.5f * (t[a][1] - t[a][2]);
            out[a * 3 + 2] += 0.5f * (t[a][1] + t[a][2]) + t[a][3];
        }
    }
}
