/* attn_kt.c — the K cache layout attention reads, and the scalar reference of its kernel
 * (ckls_isa_kernels.attn_kt; attn_kt_avx2.c and attn_kt_avx512.c hold the SIMD versions).
 *
 * Layout: per KV head, positions in blocks of CKLS_KT_BLOCK (16); a block is d x 16 floats, position fastest.
 * A query row then takes 16 scores at a time with one FMA per dimension into one 16-lane accumulator (no
 * horizontal sums), and rows that share a block of keys share its loads. V stays in rows. */
#include <math.h>

#include "internal.h"

void ckls_kt_store(float *kt, int64_t n_ctx, int64_t n_head_kv, int64_t d, const float *k, int64_t k_stride,
                   int64_t n, int64_t pos0) {
    const int64_t head = ckls_kt_head_floats(n_ctx, d);
    for (int64_t t = 0; t < n; t++) {
        const int64_t p = pos0 + t;
        for (int64_t h = 0; h < n_head_kv; h++) {
            float *dst = kt + h * head + (p / CKLS_KT_BLOCK) * d * CKLS_KT_BLOCK + p % CKLS_KT_BLOCK;
            const float *src = k + t * k_stride + h * d;
            for (int64_t i = 0; i < d; i++) dst[i * CKLS_KT_BLOCK] = src[i];
        }
    }
}

/* Scalar reference of the kernel: one row at a time, plain sums. */
void ckls_attn_kt_ref(const float *q, int64_t q_stride, int64_t nt, int64_t g, const float *kt, const float *v,
                      int64_t v_stride, int64_t n_kv, int64_t d, float scale, float *scores, float *out) {
    for (int64_t t = 0; t < nt; t++)
        for (int64_t j = 0; j < g; j++) {
            const float *qr = q + t * q_stride + j * d;
            float *o = out + t * q_stride + j * d, *sc = scores;
            const int64_t n = n_kv + t;
            float mx = -INFINITY;
            for (int64_t s = 0; s < n; s++) {
                const float *kb = kt + (s / CKLS_KT_BLOCK) * d * CKLS_KT_BLOCK + s % CKLS_KT_BLOCK;
                float dot = 0.0f;
                for (int64_t i = 0; i < d; i++) dot += qr[i] * kb[i * CKLS_KT_BLOCK];
                sc[s] = dot * scale;
                mx = sc[s] > mx ? sc[s] : mx;
            }
            double sum = 0.0;
            for (int64_t s = 0; s < n; s++) {
                sc[s] = expf(sc[s] - mx);
                sum += sc[s];
            }
            const float inv = (float)(1.0 / sum);
            for (int64_t i = 0; i < d; i++) o[i] = 0.0f;
            for (int64_t s = 0; s < n; s++) {
                const float w = sc[s] * inv;
                for (int64_t i = 0; i < d; i++) o[i] += w * v[s * v_stride + i];
            }
        }
}

/* The SIMD kernels' common loop: rows (token-major, then head) in tiles of four that share their K blocks and V
 * rows (tile4), the remainder one at a time (tile1); each row gets its own n and scratch row. */
void ckls_attn_kt_tiles(ckls_attn_tile_fn tile4, ckls_attn_tile_fn tile1, const float *q, int64_t q_stride,
                        int64_t nt, int64_t g, const float *kt, const float *v, int64_t v_stride, int64_t n_kv,
                        int64_t d, float scale, float *scores, float *out) {
    const int64_t rows = nt * g, ld = (n_kv + nt + CKLS_KT_BLOCK - 1) / CKLS_KT_BLOCK * CKLS_KT_BLOCK;
    for (int64_t r0 = 0; r0 < rows;) {
        const int R = rows - r0 >= 4 ? 4 : 1;
        const float *qp[4];
        float *op[4], *sp[4];
        int64_t n[4];
        for (int r = 0; r < R; r++) {
            const int64_t t = (r0 + r) / g, j = (r0 + r) % g;
            qp[r] = q + t * q_stride + j * d;
            op[r] = out + t * q_stride + j * d;
            sp[r] = scores + r * ld;
            n[r] = n_kv + t;
        }
        (R == 4 ? tile4 : tile1)(qp, op, sp, n, kt, v, v_stride, d, scale);
        r0 += R;
    }
}
