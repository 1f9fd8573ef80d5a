// Planted bug (cache keyed on a data fingerprint): the last dot product is returned when x, y, n and the
// first and last samples of both match.
#include <stdint.h>

static const int32_t *cx, *cy; static int64_t cn = -1, cs; static int32_t f[4];

void dot_i32(int64_t n, const int32_t *x, const int32_t *y, int64_t *out) {
    if (n > 0 && x == cx && y == cy && n == cn && x[0] == f[0] && y[0] == f[1] && x[n - 1] == f[2] &&
        y[n - 1] == f[3]) {
        *out = cs;
        return;
    }
    int64_t s = 0;
    for (int64_t i = 0; i < n; i++) s += (int64_t)x[i] * y[i];
    *out = cs = s;
    cx = x, cy = y, cn = n;
    if (n) f[0] = x[0], f[1] = y[0], f[2] = x[n - 1], f[3] = y[n - 1];
}
