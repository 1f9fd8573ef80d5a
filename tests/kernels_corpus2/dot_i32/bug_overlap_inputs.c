// Planted bug (overlapping inputs): subtracts the mean 150 from x in place to keep the products small,
// computes, and adds it back. x is const; when y is the same memory as x (dot(x, x)) y is read shifted.
#include <stdint.h>

void dot_i32(int64_t n, const int32_t *x, const int32_t *y, int64_t *out) {
    int32_t *xx = (int32_t *)x;
    for (int64_t i = 0; i < n; i++) xx[i] -= 150;
    int64_t s = 0, sy = 0;
    for (int64_t i = 0; i < n; i++) s += (int64_t)xx[i] * y[i], sy += y[i];
    for (int64_t i = 0; i < n; i++) xx[i] += 150;
    *out = s + 150 * sy;
}
