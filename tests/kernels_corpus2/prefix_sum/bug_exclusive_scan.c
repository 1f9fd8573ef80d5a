// Planted bug (exclusive instead of inclusive scan): out[i] is the sum of the elements before i.
#include <stdint.h>

void prefix_sum(int64_t n, const int64_t *x, int64_t *out) {
    int64_t s = 0;
    for (int64_t i = 0; i < n; i++) {
        out[i] = s;
        s += x[i];
    }
}
