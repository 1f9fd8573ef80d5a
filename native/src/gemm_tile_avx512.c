/* gemm_tile_avx512.c — the training GEMM tile with AVX-512: 12 x 32 register blocks (24 of the 32 zmm
 * registers accumulate). Rows and columns the blocks leave over go to the AVX2 tile (this file is built with
 * AVX2/FMA too), whose edges in turn use the scalar reference's arithmetic. The other training kernels of the
 * AVX-512 table are AVX2's (dispatch.c layers AVX-512 over AVX2). */
#include "internal.h"

#if defined(__AVX512F__)
#include <immintrin.h>

#define MR 12

void ckls_gemm_tile_avx512(int64_t m, int64_t n, int64_t k, float alpha, const float *A, int64_t a_si,
                             int64_t a_sk, const float *B, int64_t ldb, int accumulate, float *C, int64_t ldc) {
    const __m512 va = _mm512_set1_ps(alpha);
    const int64_t mb = m / MR * MR, n32 = n / 32 * 32;
    for (int64_t i = 0; i < mb; i += MR) {
        const float *a0 = A + i * a_si;
        for (int64_t j = 0; j < n32; j += 32) {
            __m512 c[MR][2];
            for (int r = 0; r < MR; r++) c[r][0] = c[r][1] = _mm512_setzero_ps();
            const float *b = B + j;
            for (int64_t p = 0; p < k; p++, b += ldb) {
                const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
                const float *ap = a0 + p * a_sk;
                for (int r = 0; r < MR; r++) {
                    const __m512 x = _mm512_set1_ps(ap[r * a_si]);
                    c[r][0] = _mm512_fmadd_ps(x, b0, c[r][0]);
                    c[r][1] = _mm512_fmadd_ps(x, b1, c[r][1]);
                }
            }
            for (int r = 0; r < MR; r++)
                for (int h = 0; h < 2; h++) {
                    float *cp = C + (i + r) * ldc + j + 16 * h;
                    const __m512 v = _mm512_mul_ps(va, c[r][h]);
                    _mm512_storeu_ps(cp, accumulate ? _mm512_add_ps(_mm512_loadu_ps(cp), v) : v);
                }
        }
    }
    if (n32 < n && mb > 0) ckls_gemm_tile_avx2(mb, n - n32, k, alpha, A, a_si, a_sk, B + n32, ldb, accumulate, C + n32, ldc);
    if (mb < m) ckls_gemm_tile_avx2(m - mb, n, k, alpha, A + mb * a_si, a_si, a_sk, B, ldb, accumulate, C + mb * ldc, ldc);
}

#endif
