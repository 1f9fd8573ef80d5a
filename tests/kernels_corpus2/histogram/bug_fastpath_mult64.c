// Planted bug (wrong fast path for multiples of 64): four interleaved sub-histograms (to break store-to-load
// dependencies) for n % 64 == 0, but the merge forgets the fourth.
#include <stdint.h>
#include <string.h>

void histogram(int64_t n, const int32_t *x, int32_t *counts) {
    memset(counts, 0, 256 * sizeof *counts);
    if (n > 0 && n % 64 == 0) {
        int32_t h[4][256];
        memset(h, 0, sizeof h);
        for (int64_t i = 0; i < n; i += 4) {
            h[0][x[i]]++, h[1][x[i + 1]]++, h[2][x[i + 2]]++, h[3][x[i + 3]]++;
        }
        for (int v = 0; v < 256; v++) counts[v] = h[0][v] + h[1][v] + h[2][v];
        return;
    }
    for (int64_t i = 0; i < n; i++) counts[x[i]]++;
}
