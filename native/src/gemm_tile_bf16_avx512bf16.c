/* gemm_tile_bf16_avx512bf16.c — gemm_tile_bf16.c's kernels with AVX512-BF16: vdpbf16ps multiplies 16 bf16 pairs
 * per zmm into f32 sums, twice the multiply-adds of an f32 FMA per instruction (Zen 4 issues two a cycle: 466
 * against the AVX2 f32 FMA's 175 GFLOP/s on one core here). Register blocks of 8 rows x 32 columns (16
 * accumulators); the edges by masks, so every size takes the same instructions. */
#include "internal.h"

#if defined(__AVX512BF16__) && defined(__AVX512BW__)
#include <immintrin.h>

static inline __mmask16 mask16(int64_t n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u); }

/* R rows x NV vectors of 16 columns (the second masked by m1, the first by m0) */
static inline __attribute__((always_inline)) void block(const int R, const int NV, int64_t kp, __m512 va,
                                                        const uint32_t *A, int64_t a_si, int64_t a_sp,
                                                        const uint32_t *B, int64_t ldb, int accumulate, float *C,
                                                        int64_t ldc, __mmask16 m0, __mmask16 m1) {
    __m512 c[8][2];
    for (int r = 0; r < R; r++) c[r][0] = c[r][1] = _mm512_setzero_ps();
    for (int64_t p = 0; p < kp; p++) {
        const uint32_t *b = B + p * ldb, *a = A + p * a_sp;
        const __m512bh b0 = (__m512bh)_mm512_maskz_loadu_epi32(m0, b);
        const __m512bh b1 = NV > 1 ? (__m512bh)_mm512_maskz_loadu_epi32(m1, b + 16) : b0;
        for (int r = 0; r < R; r++) {
            const __m512bh x = (__m512bh)_mm512_set1_epi32((int)a[r * a_si]);
            c[r][0] = _mm512_dpbf16_ps(c[r][0], x, b0);
            if (NV > 1) c[r][1] = _mm512_dpbf16_ps(c[r][1], x, b1);
        }
    }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++) {
            float *cp = C + r * ldc + 16 * v;
            const __mmask16 m = v ? m1 : m0;
            __m512 y = _mm512_mul_ps(va, c[r][v]);
            if (accumulate) y = _mm512_add_ps(_mm512_maskz_loadu_ps(m, cp), y);
            _mm512_mask_storeu_ps(cp, m, y);
        }
}

#define ROWS_CASE(R)                                                                                             \
    case R:                                                                                                      \
        if (w > 16)                                                                                              \
            block(R, 2, kp, va, a, a_si, a_sp, B + j, ldb, accumulate, C + i * ldc + j, ldc, 0xFFFF, mask16(w - 16)); \
        else                                                                                                     \
            block(R, 1, kp, va, a, a_si, a_sp, B + j, ldb, accumulate, C + i * ldc + j, ldc, mask16(w), 0);      \
        break;

void ckls_gemm_tile_bf16_avx512bf16(int64_t m, int64_t n, int64_t kp, float alpha, const uint32_t *A, int64_t a_si,
                                    int64_t a_sp, const uint32_t *B, int64_t ldb, int accumulate, float *C,
                                    int64_t ldc) {
    const __m512 va = _mm512_set1_ps(alpha);
    for (int64_t i = 0; i < m; i += 8) {
        const uint32_t *a = A + i * a_si;
        for (int64_t j = 0; j < n; j += 32) {
            const int64_t w = n - j < 32 ? n - j : 32;
            switch (m - i < 8 ? m - i : 8) {
                ROWS_CASE(1)
                ROWS_CASE(2)
                ROWS_CASE(3)
                ROWS_CASE(4)
                ROWS_CASE(5)
                ROWS_CASE(6)
                ROWS_CASE(7)
                ROWS_CASE(8)
            }
        }
    }
}

/* 16 f32 pairs (lo[e], hi[e]) -> 16 bf16 pairs, lo in the low half */
static inline __m512i interleave(__m512 lo, __m512 hi) {
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                                         21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
}

void ckls_bf16_rows_avx512bf16(const float *x, int64_t rows, int64_t cols, int64_t ldx, uint32_t *y, int64_t ldy) {
    for (int64_t i = 0; i < rows; i++) {
        const float *xr = x + i * ldx;
        uint32_t *yr = y + i * ldy;
        for (int64_t c = 0; c < cols; c += 32) { /* 32 floats -> 16 pairs, in order: one convert, no shuffle */
            const __m512 lo = _mm512_maskz_loadu_ps(mask16(cols - c), xr + c);
            const __m512 hi = _mm512_maskz_loadu_ps(cols - c > 16 ? mask16(cols - c - 16) : 0, xr + c + 16);
            _mm512_mask_storeu_epi32(yr + c / 2, mask16((cols - c + 1) / 2), (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        }
    }
}

void ckls_bf16_pairs_avx512bf16(const float *x, int64_t rows, int64_t cols, int64_t ldx, uint32_t *y, int64_t ldy) {
    for (int64_t p = 0; 2 * p < rows; p++) {
        const float *x0 = x + 2 * p * ldx, *x1 = x0 + ldx;
        const int odd = 2 * p + 1 == rows; /* the last row pairs with zeros */
        for (int64_t j = 0; j < cols; j += 16) {
            const __mmask16 m = mask16(cols - j);
            const __m512 lo = _mm512_maskz_loadu_ps(m, x0 + j), hi = _mm512_maskz_loadu_ps(odd ? 0 : m, x1 + j);
            _mm512_mask_storeu_epi32(y + p * ldy + j, m, interleave(lo, hi));
        }
    }
}

#endif
