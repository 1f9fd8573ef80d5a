// Correct: products and sum in int64.
#include <stdint.h>

void dot_i32(int64_t n, const int32_t *x, const int32_t *y, int64_t *out) {
    int64_t s = 0;
    for (int64_t i = 0; i < n; i++) s += (int64_t)x[i] * y[i];
    *out = s;
}
