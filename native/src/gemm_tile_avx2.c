/* gemm_tile_avx2.c — the training GEMM tile with AVX2/FMA: 6 x 16 register blocks (12 accumulators), 4 x 16
 * and 4 x 8 ones for the rows and columns left over, 1 x 32 for the last rows. Edges the blocks do not cover go
 * through the scalar reference's arithmetic (gemm_tile.c); the panel transpose in 8 x 8 register blocks; the row
 * dots (gemm_nt) in 2 x 4 blocks. */
#include "internal.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

static inline void store(float *c, __m256 acc, __m256 alpha, int accumulate) {
    const __m256 v = _mm256_mul_ps(alpha, acc);
    _mm256_storeu_ps(c, accumulate ? _mm256_add_ps(_mm256_loadu_ps(c), v) : v);
}

static void gemm_rest(int64_t m, int64_t j_begin, int64_t n, int64_t k, __m256 va, float alpha, const float *A,
                      int64_t a_si, int64_t a_sk, const float *B, int64_t ldb, int accumulate, float *C, int64_t ldc);

void ckls_gemm_tile_avx2(int64_t m, int64_t n, int64_t k, float alpha, const float *A, int64_t a_si, int64_t a_sk,
                           const float *B, int64_t ldb, int accumulate, float *C, int64_t ldc) {
    const __m256 va = _mm256_set1_ps(alpha);
    /* two rows left over (m = 8: an adapter's rank) go as two 4-row blocks with the last 6, not one at a time */
    const int64_t m6 = m % 6 == 2 && m >= 8 ? m / 6 * 6 - 6 : m / 6 * 6, n16 = n / 16 * 16;
    /* 6 x 16 blocks: 12 accumulators keep both FMA pipes busy through their latency */
    for (int64_t i = 0; i < m6; i += 6) {
        const float *a0 = A + i * a_si;
        for (int64_t j = 0; j < n16; j += 16) {
            __m256 c[6][2];
            for (int r = 0; r < 6; r++) c[r][0] = c[r][1] = _mm256_setzero_ps();
            const float *b = B + j;
            for (int64_t p = 0; p < k; p++, b += ldb) {
                const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
                const float *ap = a0 + p * a_sk;
                for (int r = 0; r < 6; r++) {
                    const __m256 x = _mm256_broadcast_ss(ap + r * a_si);
                    c[r][0] = _mm256_fmadd_ps(x, b0, c[r][0]);
                    c[r][1] = _mm256_fmadd_ps(x, b1, c[r][1]);
                }
            }
            for (int r = 0; r < 6; r++) {
                store(C + (i + r) * ldc + j, c[r][0], va, accumulate);
                store(C + (i + r) * ldc + j + 8, c[r][1], va, accumulate);
            }
        }
        if (n16 < n) gemm_rest(6, n16, n, k, va, alpha, A + i * a_si, a_si, a_sk, B, ldb, accumulate, C + i * ldc, ldc);
    }
    if (m6 < m) gemm_rest(m - m6, 0, n, k, va, alpha, A + m6 * a_si, a_si, a_sk, B, ldb, accumulate, C + m6 * ldc, ldc);
}

/* Rows 0..m-1 (m < 6 or a column remainder), columns j_begin..n-1: 4 x 16, 4 x 8, then single rows. */
static void gemm_rest(int64_t m, int64_t j_begin, int64_t n, int64_t k, __m256 va, float alpha, const float *A,
                      int64_t a_si, int64_t a_sk, const float *B, int64_t ldb, int accumulate, float *C, int64_t ldc) {
    const int64_t m4 = m / 4 * 4, n8 = j_begin + (n - j_begin) / 8 * 8;
    for (int64_t i = 0; i < m4; i += 4) {
        const float *a0 = A + i * a_si, *a1 = a0 + a_si, *a2 = a1 + a_si, *a3 = a2 + a_si;
        int64_t j = j_begin;
        for (; j + 16 <= n; j += 16) {
            __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00,
                   c31 = c00;
            const float *b = B + j;
            for (int64_t p = 0; p < k; p++, b += ldb) {
                const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
                const int64_t o = p * a_sk;
                __m256 x = _mm256_broadcast_ss(a0 + o);
                c00 = _mm256_fmadd_ps(x, b0, c00);
                c01 = _mm256_fmadd_ps(x, b1, c01);
                x = _mm256_broadcast_ss(a1 + o);
                c10 = _mm256_fmadd_ps(x, b0, c10);
                c11 = _mm256_fmadd_ps(x, b1, c11);
                x = _mm256_broadcast_ss(a2 + o);
                c20 = _mm256_fmadd_ps(x, b0, c20);
                c21 = _mm256_fmadd_ps(x, b1, c21);
                x = _mm256_broadcast_ss(a3 + o);
                c30 = _mm256_fmadd_ps(x, b0, c30);
                c31 = _mm256_fmadd_ps(x, b1, c31);
            }
            float *c = C + i * ldc + j;
            store(c, c00, va, accumulate);
            store(c + 8, c01, va, accumulate);
            store(c + ldc, c10, va, accumulate);
            store(c + ldc + 8, c11, va, accumulate);
            store(c + 2 * ldc, c20, va, accumulate);
            store(c + 2 * ldc + 8, c21, va, accumulate);
            store(c + 3 * ldc, c30, va, accumulate);
            store(c + 3 * ldc + 8, c31, va, accumulate);
        }
        for (; j < n8; j += 8) {
            __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
            const float *b = B + j;
            for (int64_t p = 0; p < k; p++, b += ldb) {
                const __m256 b0 = _mm256_loadu_ps(b);
                const int64_t o = p * a_sk;
                c0 = _mm256_fmadd_ps(_mm256_broadcast_ss(a0 + o), b0, c0);
                c1 = _mm256_fmadd_ps(_mm256_broadcast_ss(a1 + o), b0, c1);
                c2 = _mm256_fmadd_ps(_mm256_broadcast_ss(a2 + o), b0, c2);
                c3 = _mm256_fmadd_ps(_mm256_broadcast_ss(a3 + o), b0, c3);
            }
            float *c = C + i * ldc + j;
            store(c, c0, va, accumulate);
            store(c + ldc, c1, va, accumulate);
            store(c + 2 * ldc, c2, va, accumulate);
            store(c + 3 * ldc, c3, va, accumulate);
        }
        if (n8 < n) ckls_gemm_tile_ref(4, n - n8, k, alpha, a0, a_si, a_sk, B + n8, ldb, accumulate, C + i * ldc + n8, ldc);
    }
    for (int64_t i = m4; i < m; i++) { /* last rows: one at a time, 32 columns (4 FMA chains) then 8 */
        const float *a0 = A + i * a_si;
        int64_t j = j_begin;
        for (; j + 32 <= n; j += 32) {
            __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
            const float *b = B + j;
            for (int64_t p = 0; p < k; p++, b += ldb) {
                const __m256 x = _mm256_broadcast_ss(a0 + p * a_sk);
                c0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b), c0);
                c1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b + 8), c1);
                c2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b + 16), c2);
                c3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b + 24), c3);
            }
            float *c = C + i * ldc + j;
            store(c, c0, va, accumulate);
            store(c + 8, c1, va, accumulate);
            store(c + 16, c2, va, accumulate);
            store(c + 24, c3, va, accumulate);
        }
        for (; j < n8; j += 8) {
            __m256 c0 = _mm256_setzero_ps();
            const float *b = B + j;
            for (int64_t p = 0; p < k; p++, b += ldb) c0 = _mm256_fmadd_ps(_mm256_broadcast_ss(a0 + p * a_sk), _mm256_loadu_ps(b), c0);
            store(C + i * ldc + j, c0, va, accumulate);
        }
        if (n8 < n) ckls_gemm_tile_ref(1, n - n8, k, alpha, a0, a_si, a_sk, B + n8, ldb, accumulate, C + i * ldc + n8, ldc);
    }
}

/* 8 x 8 blocks transposed in registers (unpack, shuffle, lane permute); the edges as the reference does them */
void ckls_transpose_avx2(const float *src, int64_t rows, int64_t cols, int64_t lds, float *dst, int64_t ldd) {
    const int64_t r8 = rows / 8 * 8, c8 = cols / 8 * 8;
    for (int64_t i = 0; i < r8; i += 8)
        for (int64_t j = 0; j < c8; j += 8) {
            const float *s = src + i * lds + j;
            __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + lds), r2 = _mm256_loadu_ps(s + 2 * lds),
                   r3 = _mm256_loadu_ps(s + 3 * lds), r4 = _mm256_loadu_ps(s + 4 * lds),
                   r5 = _mm256_loadu_ps(s + 5 * lds), r6 = _mm256_loadu_ps(s + 6 * lds),
                   r7 = _mm256_loadu_ps(s + 7 * lds);
            const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
            const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
            const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
            const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
            const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
            const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            r0 = _mm256_permute2f128_ps(u0, u4, 0x20);
            r1 = _mm256_permute2f128_ps(u1, u5, 0x20);
            r2 = _mm256_permute2f128_ps(u2, u6, 0x20);
            r3 = _mm256_permute2f128_ps(u3, u7, 0x20);
            r4 = _mm256_permute2f128_ps(u0, u4, 0x31);
            r5 = _mm256_permute2f128_ps(u1, u5, 0x31);
            r6 = _mm256_permute2f128_ps(u2, u6, 0x31);
            r7 = _mm256_permute2f128_ps(u3, u7, 0x31);
            float *d = dst + j * ldd + i;
            _mm256_storeu_ps(d, r0);
            _mm256_storeu_ps(d + ldd, r1);
            _mm256_storeu_ps(d + 2 * ldd, r2);
            _mm256_storeu_ps(d + 3 * ldd, r3);
            _mm256_storeu_ps(d + 4 * ldd, r4);
            _mm256_storeu_ps(d + 5 * ldd, r5);
            _mm256_storeu_ps(d + 6 * ldd, r6);
            _mm256_storeu_ps(d + 7 * ldd, r7);
        }
    if (c8 < cols) ckls_transpose_ref(src + c8, r8, cols - c8, lds, dst + c8 * ldd, ldd);
    if (r8 < rows) ckls_transpose_ref(src + r8 * lds, rows - r8, cols, lds, dst + r8, ldd);
}

/* ---- C (=|+=) alpha * A.W^T: dots of A's rows with W's ---------------------------------------------------------- */
/* [sum(a0), sum(a1), sum(a2), sum(a3)] */
static inline __m128 hsum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
    const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

/* x's dots with W's 4 rows from w (ldw apart) over p0..k-1 (the k % 8 tail) */
static inline __m128 tail4(const float *x, const float *w, int64_t ldw, int64_t p0, int64_t k) {
    float t[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int q = 0; q < 4; q++)
        for (int64_t p = p0; p < k; p++) t[q] += x[p] * w[q * ldw + p];
    return _mm_loadu_ps(t);
}

static inline void store4(float *c, __m128 s, float alpha, int accumulate) {
    const __m128 v = _mm_mul_ps(_mm_set1_ps(alpha), s);
    _mm_storeu_ps(c, accumulate ? _mm_add_ps(_mm_loadu_ps(c), v) : v);
}

static inline float dot1(const float *x, const float *w, int64_t k) {
    __m256 c = _mm256_setzero_ps();
    int64_t p = 0;
    for (; p + 8 <= k; p += 8) c = _mm256_fmadd_ps(_mm256_loadu_ps(x + p), _mm256_loadu_ps(w + p), c);
    float s = _mm_cvtss_f32(hsum4(c, c, c, c));
    for (; p < k; p++) s += x[p] * w[p];
    return s;
}

/* 2 rows of A x 4 rows of W (8 accumulators: both FMA pipes stay busy through their latency; 6 loads a step of 8
 * FMAs), then 1 row x 4; W's rows left over (n % 4) one dot at a time. */
void ckls_gemm_nt_avx2(int64_t m, int64_t n, int64_t k, float alpha, const float *A, int64_t lda, const float *W,
                       int64_t ldw, int accumulate, float *C, int64_t ldc) {
    const int64_t k8 = k / 8 * 8, n4 = n / 4 * 4;
    for (int64_t j = 0; j < n4; j += 4) {
        const float *w0 = W + j * ldw, *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;
        int64_t i = 0;
        for (; i + 2 <= m; i += 2) {
            const float *x0 = A + i * lda, *x1 = x0 + lda;
            __m256 c00 = _mm256_setzero_ps(), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00, c12 = c00,
                   c13 = c00;
            for (int64_t p = 0; p < k8; p += 8) {
                const __m256 a0 = _mm256_loadu_ps(x0 + p), a1 = _mm256_loadu_ps(x1 + p);
                __m256 w = _mm256_loadu_ps(w0 + p);
                c00 = _mm256_fmadd_ps(a0, w, c00);
                c10 = _mm256_fmadd_ps(a1, w, c10);
                w = _mm256_loadu_ps(w1 + p);
                c01 = _mm256_fmadd_ps(a0, w, c01);
                c11 = _mm256_fmadd_ps(a1, w, c11);
                w = _mm256_loadu_ps(w2 + p);
                c02 = _mm256_fmadd_ps(a0, w, c02);
                c12 = _mm256_fmadd_ps(a1, w, c12);
                w = _mm256_loadu_ps(w3 + p);
                c03 = _mm256_fmadd_ps(a0, w, c03);
                c13 = _mm256_fmadd_ps(a1, w, c13);
            }
            __m128 s0 = hsum4(c00, c01, c02, c03), s1 = hsum4(c10, c11, c12, c13);
            if (k8 < k) {
                s0 = _mm_add_ps(s0, tail4(x0, w0, ldw, k8, k));
                s1 = _mm_add_ps(s1, tail4(x1, w0, ldw, k8, k));
            }
            store4(C + i * ldc + j, s0, alpha, accumulate);
            store4(C + (i + 1) * ldc + j, s1, alpha, accumulate);
        }
        for (; i < m; i++) {
            const float *x0 = A + i * lda;
            __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
            for (int64_t p = 0; p < k8; p += 8) {
                const __m256 a0 = _mm256_loadu_ps(x0 + p);
                c0 = _mm256_fmadd_ps(a0, _mm256_loadu_ps(w0 + p), c0);
                c1 = _mm256_fmadd_ps(a0, _mm256_loadu_ps(w1 + p), c1);
                c2 = _mm256_fmadd_ps(a0, _mm256_loadu_ps(w2 + p), c2);
                c3 = _mm256_fmadd_ps(a0, _mm256_loadu_ps(w3 + p), c3);
            }
            __m128 s0 = hsum4(c0, c1, c2, c3);
            if (k8 < k) s0 = _mm_add_ps(s0, tail4(x0, w0, ldw, k8, k));
            store4(C + i * ldc + j, s0, alpha, accumulate);
        }
    }
    for (int64_t j = n4; j < n; j++)
        for (int64_t i = 0; i < m; i++) {
            const float s = alpha * dot1(A + i * lda, W + j * ldw, k);
            C[i * ldc + j] = accumulate ? C[i * ldc + j] + s : s;
        }
}

#endif
