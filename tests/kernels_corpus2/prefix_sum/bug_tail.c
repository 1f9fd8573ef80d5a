// Planted bug (tail): unrolled by 4; the remainder loop restarts its running sum at 0.
#include <stdint.h>

void prefix_sum(int64_t n, const int64_t *x, int64_t *out) {
    int64_t s = 0, i = 0;
    for (; i + 4 <= n; i += 4) {
        out[i] = s += x[i];
        out[i + 1] = s += x[i + 1];
        out[i + 2] = s += x[i + 2];
        out[i + 3] = s += x[i + 3];
    }
    for (int64_t t = 0; i < n; i++) out[i] = t += x[i];
}
