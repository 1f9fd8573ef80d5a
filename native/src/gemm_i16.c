/* gemm_i16.c — int16 products for the integer mode's vocabulary dX where the CPU has no bf16 products (AVX2):
 * dX = dY.W with dY (the softmax gradient) and W both in 14-bit integers with a float scale per 32 values, summed
 * exactly in int32 and scaled once a block. The scalar references of the kernels (ckls_quantize_i16_ref,
 * ckls_gemm_i16x8_ref; gemm_i16_avx2.c has the AVX2 ones, bit for bit) and W^T's packing.
 *
 * Why 14 bits: a block's 32 products of two values within +-8191 sum to at most 32 * 8191^2 < 2^31, so the int32
 * sum is exact; and a probability keeps its own bits down to 1/8191 of its block's largest (8-bit Q8_0 blocks of
 * 32 lose the vocabulary's small probabilities next to a large one, which is why this product is not on the 7-bit
 * kernels). Its error bound, per output: sum over blocks of 32 * (amax_dy * amax_w) / 8191, about 2^-13 of the
 * sum of the products' magnitudes — four times finer than the bf16 products of the CPUs that have them. */
#include <math.h>

#include "backward.h"

void ckls_quantize_i16_ref(const float *x, int16_t *q, int64_t n, float *d) {
    for (int64_t b = 0; b < (n + CKLS_I16_BLOCK - 1) / CKLS_I16_BLOCK; b++) {
        const int64_t i0 = b * CKLS_I16_BLOCK, m = n - i0 < CKLS_I16_BLOCK ? n - i0 : CKLS_I16_BLOCK;
        float amax = 0.0f;
        for (int64_t i = 0; i < m; i++) amax = fmaxf(fabsf(x[i0 + i]), amax); /* NaN dropped */
        const float id = amax ? (float)CKLS_I16_MAX / amax : 0.0f;
        d[b] = amax / (float)CKLS_I16_MAX;
        for (int64_t i = 0; i < CKLS_I16_BLOCK; i++) {
            float v = i < m ? x[i0 + i] * id : 0.0f; /* Inf where amax is denormal, NaN from 0 * Inf or NaN */
            v = v != v ? 0.0f : v > CKLS_I16_MAX ? CKLS_I16_MAX : v < -CKLS_I16_MAX ? -CKLS_I16_MAX : v;
            q[i0 + i] = (int16_t)nearbyintf(v);
        }
    }
}

void ckls_gemm_i16x8_ref(int64_t nb, const int16_t *a, int64_t lda, const float *sa, int64_t ldsa,
                         const block_i16x8 *w, int64_t ws, float *c, int64_t ldc, int nt, int accumulate) {
    for (int t = 0; t < nt; t++)
        for (int j = 0; j < 16; j++) {
            const block_i16x8 *g = w + (j / 8) * ws;
            const int col = j % 8;
            float acc = accumulate ? c[t * ldc + j] : 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                const int16_t *ab = a + t * lda + b * CKLS_I16_BLOCK;
                int32_t s = 0;
                for (int p = 0; p < CKLS_I16_BLOCK / 2; p++)
                    s += ab[2 * p] * g[b].q[p][2 * col] + ab[2 * p + 1] * g[b].q[p][2 * col + 1];
                acc = fmaf((float)s, sa[t * ldsa + b] * g[b].d[col], acc);
            }
            c[t * ldc + j] = acc;
        }
}

int64_t ckls_i16_weight_blocks(int64_t n_out, int64_t n_in) {
    return (n_in + 7) / 8 * ((n_out + CKLS_I16_BLOCK - 1) / CKLS_I16_BLOCK);
}

/* Each column's 32-row blocks through the row quantizer (the same rule as dY's), laid out for the kernels: group g
 * (columns 8g..8g+7, zero past n_in) block b at g * nb + b. */
block_i16x8 *ckls_i16_weight_t(int type, const void *w, int64_t n_out, int64_t n_in) {
    const int64_t nb = (n_out + CKLS_I16_BLOCK - 1) / CKLS_I16_BLOCK, ng = (n_in + 7) / 8, rb = ckls_row_bytes(type, n_in);
    block_i16x8 *wt = ckls_aligned_alloc(sizeof(block_i16x8) * (size_t)(ng * nb));
    float *rows = ckls_aligned_alloc(sizeof(float) * (size_t)(CKLS_I16_BLOCK * n_in));
    if (!wt || !rows) {
        ckls_aligned_free(wt);
        ckls_aligned_free(rows);
        ckls_fail(CKLS_ENOMEM, "out of memory for an int16 copy of a %lld x %lld matrix", (long long)n_out,
                  (long long)n_in);
        return NULL;
    }
    for (int64_t b = 0; b < nb; b++) {
        const int64_t r0 = b * CKLS_I16_BLOCK, m = n_out - r0 < CKLS_I16_BLOCK ? n_out - r0 : CKLS_I16_BLOCK;
        for (int64_t r = 0; r < m; r++) ckls_dequantize_row(type, (const char *)w + (r0 + r) * rb, rows + r * n_in, n_in);
        for (int64_t c = 0; c < ng * 8; c++) {
            float col[CKLS_I16_BLOCK], d;
            int16_t q[CKLS_I16_BLOCK];
            for (int64_t r = 0; r < m; r++) col[r] = c < n_in ? rows[r * n_in + c] : 0.0f;
            ckls_quantize_i16_ref(col, q, m, &d);
            block_i16x8 *blk = wt + (c / 8) * nb + b;
            blk->d[c % 8] = d;
            for (int p = 0; p < CKLS_I16_BLOCK / 2; p++) {
                blk->q[p][2 * (c % 8)] = q[2 * p];
                blk->q[p][2 * (c % 8) + 1] = q[2 * p + 1];
            }
        }
    }
    ckls_aligned_free(rows);
    return wt;
}
