// Planted bug (value at the range end): a bounds check written as v < 255 drops every 255.
#include <stdint.h>
#include <string.h>

void histogram(int64_t n, const int32_t *x, int32_t *counts) {
    memset(counts, 0, 256 * sizeof *counts);
    for (int64_t i = 0; i < n; i++)
        if (x[i] >= 0 && x[i] < 255) counts[x[i]]++;
}
