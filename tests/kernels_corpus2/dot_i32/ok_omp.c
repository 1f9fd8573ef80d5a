// Correct: OpenMP reduction over int64 partial sums (exact, so any thread count gives the same bits).
#include <stdint.h>

void dot_i32(int64_t n, const int32_t *x, const int32_t *y, int64_t *out) {
    int64_t s = 0;
    #pragma omp parallel for reduction(+ : s) schedule(static) if (n > 4096)
    for (int64_t i = 0; i < n; i++) s += (int64_t)x[i] * y[i];
    *out = s;
}
