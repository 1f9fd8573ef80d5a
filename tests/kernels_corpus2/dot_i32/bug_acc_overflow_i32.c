// Planted bug (i32 accumulator overflows at large n): the products fit in int32, so the sum is kept in an
// int too; it passes 2^31 near n = 95000.
#include <stdint.h>

void dot_i32(int64_t n, const int32_t *x, const int32_t *y, int64_t *out) {
    int s = 0;
    for (int64_t i = 0; i < n; i++) s += x[i] * y[i];
    *out = s;
}
