// Planted bug (wrong fast path for multiples of 64): for n % 64 == 0, x is taken as bytes ("pixel data")
// for a u8 x s32 path; samples above 255 lose their high bits.
#include <stdint.h>

void dot_i32(int64_t n, const int32_t *x, const int32_t *y, int64_t *out) {
    int64_t s = 0;
    if (n > 0 && n % 64 == 0) {
        for (int64_t i = 0; i < n; i++) s += (int64_t)(uint8_t)x[i] * y[i];
        *out = s;
        return;
    }
    for (int64_t i = 0; i < n; i++) s += (int64_t)x[i] * y[i];
    *out = s;
}
