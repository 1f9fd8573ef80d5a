/* gemm_i16_body.h — the int16 product kernel (gemm_i16.c's ckls_gemm_i16x8_ref, bit for bit) for 256-bit
 * registers, parametrised by its multiply-add: the includer defines I16_NAME (the exported function) and
 * I16_DOT(s, x, w) = s + the int32 sums of x's and w's 16-bit pairs (AVX2: madd then add; AVX-VNNI: one dpwssd),
 * and I16_UNROLL, how many of a block's 16 steps the compiler unrolls (measured per ISA: all 16 spill AVX2's
 * broadcasts, 4 is its best, 1.1x the rolled loop; AVX-VNNI's fewer operations take all 16, 1.09x 2 or 8).
 * Per block, 16 steps of (a pair of each token's values broadcast) x (8 columns' pairs of each group), then each
 * sum to float times the token's and the column's scales. */
#define INLINE static inline __attribute__((always_inline))
#define I16_PRAGMA(x) _Pragma(#x)
#define I16_UNROLL_STEPS(n) I16_PRAGMA(GCC unroll n)

INLINE void gemm_i16x8(int64_t nb, const int16_t *a, int64_t lda, const float *sa, int64_t ldsa,
                       const block_i16x8 *w, int64_t ws, float *c, int64_t ldc, const int nt, int accumulate) {
    __m256 f[4][2];
    for (int t = 0; t < nt; t++)
        for (int g = 0; g < 2; g++) f[t][g] = accumulate ? _mm256_loadu_ps(c + t * ldc + 8 * g) : _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const block_i16x8 *w0 = w + b, *w1 = w + ws + b;
        __m256i s[4][2];
        for (int t = 0; t < nt; t++) s[t][0] = s[t][1] = _mm256_setzero_si256();
        I16_UNROLL_STEPS(I16_UNROLL)
        for (int p = 0; p < CKLS_I16_BLOCK / 2; p++) {
            const __m256i b0 = _mm256_load_si256((const __m256i *)w0->q[p]), b1 = _mm256_load_si256((const __m256i *)w1->q[p]);
            for (int t = 0; t < nt; t++) {
                int32_t pair;
                memcpy(&pair, a + t * lda + b * CKLS_I16_BLOCK + 2 * p, sizeof pair);
                const __m256i x = _mm256_set1_epi32(pair);
                s[t][0] = I16_DOT(s[t][0], x, b0);
                s[t][1] = I16_DOT(s[t][1], x, b1);
            }
        }
        const __m256 d0 = _mm256_loadu_ps(w0->d), d1 = _mm256_loadu_ps(w1->d);
        for (int t = 0; t < nt; t++) {
            const __m256 st = _mm256_broadcast_ss(sa + t * ldsa + b);
            f[t][0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[t][0]), _mm256_mul_ps(st, d0), f[t][0]);
            f[t][1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[t][1]), _mm256_mul_ps(st, d1), f[t][1]);
        }
    }
    for (int t = 0; t < nt; t++)
        for (int g = 0; g < 2; g++) _mm256_storeu_ps(c + t * ldc + 8 * g, f[t][g]);
}

/* one specialisation per token count, so the token loops unroll and the sums stay in registers */
void I16_NAME(int64_t nb, const int16_t *a, int64_t lda, const float *sa, int64_t ldsa, const block_i16x8 *w,
              int64_t ws, float *c, int64_t ldc, int nt, int accumulate) {
    switch (nt) {
    case 4: gemm_i16x8(nb, a, lda, sa, ldsa, w, ws, c, ldc, 4, accumulate); break;
    case 3: gemm_i16x8(nb, a, lda, sa, ldsa, w, ws, c, ldc, 3, accumulate); break;
    case 2: gemm_i16x8(nb, a, lda, sa, ldsa, w, ws, c, ldc, 2, accumulate); break;
    default: gemm_i16x8(nb, a, lda, sa, ldsa, w, ws, c, ldc, 1, accumulate); break;
    }
}
