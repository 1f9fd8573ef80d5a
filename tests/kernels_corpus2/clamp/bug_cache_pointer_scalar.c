// Planted bug (cache keyed on pointers and scalars): the last result is kept and replayed when x, out, n, lo
// and hi are the same as last time, even when x's contents changed in between.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const float *last_x;
static float *last_out, last_lo, last_hi, *cache;
static int64_t last_n = -1;

void clamp(int64_t n, const float *x, float lo, float hi, float *out) {
    if (cache && x == last_x && out == last_out && n == last_n && lo == last_lo && hi == last_hi) {
        memcpy(out, cache, (size_t)n * sizeof(float));
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        v = v < lo ? lo : v;
        out[i] = v > hi ? hi : v;
    }
    free(cache);
    cache = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (cache) memcpy(cache, out, (size_t)n * sizeof(float));
    last_x = x, last_out = out, last_n = n, last_lo = lo, last_hi = hi;
}
