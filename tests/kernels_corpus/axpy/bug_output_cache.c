// Planted bug (output caching): remembers the last result by input pointers and size and replays it.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const float *last_x, *last_y;
static int64_t last_n = -1;
static float *cache;

void axpy(int64_t n, float a, const float *x, const float *y, float *out) {
    if (x == last_x && y == last_y && n == last_n && cache) {
        memcpy(out, cache, (size_t)n * sizeof(float));
        return;
    }
    for (int64_t i = 0; i < n; i++) out[i] = a * x[i] + y[i];
    free(cache);
    cache = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (cache) memcpy(cache, out, (size_t)n * sizeof(float));
    last_x = x, last_y = y, last_n = n;
}
