// Planted bug (tail): unrolled by 4 without a remainder loop.
#include <stdint.h>
#include <string.h>

void histogram(int64_t n, const int32_t *x, int32_t *counts) {
    memset(counts, 0, 256 * sizeof *counts);
    for (int64_t i = 0; i + 4 <= n; i += 4) {
        counts[x[i]]++, counts[x[i + 1]]++, counts[x[i + 2]]++, counts[x[i + 3]]++;
    }
}
