// Planted bug (cache keyed on pointers and scalars): replays the last output when x, out, n and k match.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const double *cx; static double *cout, *cache; static int64_t cn = -1, ck;

void maxpool1d(int64_t n, const double *x, int64_t k, double *out) {
    if (cache && x == cx && out == cout && n == cn && k == ck) {
        memcpy(out, cache, (size_t)n * sizeof *out);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t end = i + k < n ? i + k : n;
        double m = x[i];
        for (int64_t j = i + 1; j < end; j++)
            if (x[j] > m || x[j] != x[j]) m = m != m ? m : x[j];
        out[i] = m;
    }
    free(cache);
    cache = malloc((size_t)(n ? n : 1) * sizeof *cache);
    if (cache && n) memcpy(cache, out, (size_t)n * sizeof *out);
    cx = x, cout = out, cn = n, ck = k;
}
