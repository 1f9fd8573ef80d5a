// Planted bug (tail): the remainder after the blocks of 4 is dropped.
#include <immintrin.h>
#include <stdint.h>

void dot_i32(int64_t n, const int32_t *x, const int32_t *y, int64_t *out) {
    __m256i acc = _mm256_setzero_si256();
    for (int64_t i = 0; i + 4 <= n; i += 4) {
        __m256i a = _mm256_cvtepi32_epi64(_mm_loadu_si128((const __m128i *)(x + i)));
        __m256i b = _mm256_cvtepi32_epi64(_mm_loadu_si128((const __m128i *)(y + i)));
        acc = _mm256_add_epi64(acc, _mm256_mul_epi32(a, b));
    }
    int64_t t[4];
    _mm256_storeu_si256((__m256i *)t, acc);
    *out = t[0] + t[1] + t[2] + t[3];
}
