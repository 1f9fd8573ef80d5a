// Pitfall: the counts are assumed to arrive zeroed, so they keep whatever the buffer held.
#include <stdint.h>

void histogram(int64_t n, const int32_t *x, int32_t *counts) {
    for (int64_t i = 0; i < n; i++) {
        const uint32_t v = (uint32_t)x[i];
        if (v < 256u) counts[v]++;
    }
}
