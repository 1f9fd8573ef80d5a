// Planted bug (cache keyed on a data fingerprint): the scan is replayed from a cache when x, out, n and the
// first, middle and last counts match the previous call.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const int64_t *cx; static int64_t *cout, cn = -1, f0, f1, f2, *cache;

void prefix_sum(int64_t n, const int64_t *x, int64_t *out) {
    if (cache && n > 0 && x == cx && out == cout && n == cn && x[0] == f0 && x[n / 2] == f1 && x[n - 1] == f2) {
        memcpy(out, cache, (size_t)n * sizeof *out);
        return;
    }
    int64_t s = 0;
    for (int64_t i = 0; i < n; i++) out[i] = s += x[i];
    free(cache);
    cache = malloc((size_t)(n ? n : 1) * sizeof *cache);
    if (cache && n) memcpy(cache, out, (size_t)n * sizeof *out);
    cx = x, cout = out, cn = n;
    if (n) f0 = x[0], f1 = x[n / 2], f2 = x[n - 1];
}
