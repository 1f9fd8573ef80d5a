// Planted bug (OpenMP race above a size threshold): the parallel path (n >= 65536) adds into the shared sum
// without a reduction clause.
#include <stdint.h>

void dot_i32(int64_t n, const int32_t *x, const int32_t *y, int64_t *out) {
    int64_t s = 0;
    #pragma omp parallel for schedule(static) if (n >= 65536)
    for (int64_t i = 0; i < n; i++) s += (int64_t)x[i] * y[i];
    *out = s;
}
