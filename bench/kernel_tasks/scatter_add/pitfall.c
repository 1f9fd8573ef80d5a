// Pitfall: C's % keeps the sign of a negative index, so idx < 0 writes before the accumulator.
#include <stdint.h>

void scatter_add(int64_t n, int64_t bins, const int32_t *idx, const float *vals, float *acc) {
    for (int64_t i = 0; i < n; i++) acc[idx[i] % bins] += vals[i];
}
