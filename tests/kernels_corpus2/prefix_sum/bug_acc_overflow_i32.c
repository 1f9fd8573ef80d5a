// Planted bug (i32 accumulator overflows at large n): the running sum is an int; with counts up to 1e5 it
// passes 2^31 somewhere past n = 40000.
#include <stdint.h>

void prefix_sum(int64_t n, const int64_t *x, int64_t *out) {
    int s = 0;
    for (int64_t i = 0; i < n; i++) {
        s += (int)x[i];
        out[i] = s;
    }
}
