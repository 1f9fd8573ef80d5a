// Planted bug (cache keyed on a data fingerprint): replays the last output when x, out, n and the sum of
// x's first eight values match.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const double *cx; static double *cout, cfp, *cache; static int64_t cn = -1;

void softplus(int64_t n, const double *x, double *out) {
    double fp = 0.0;
    for (int64_t i = 0; i < n && i < 8; i++) fp += x[i];
    if (cache && x == cx && out == cout && n == cn && fp == cfp) {
        memcpy(out, cache, (size_t)n * sizeof *out);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        out[i] = (v > 0.0 ? v : 0.0) + log1p(exp(-fabs(v)));
        if (v != v) out[i] = v;
    }
    free(cache);
    cache = malloc((size_t)(n ? n : 1) * sizeof *cache);
    if (cache && n) memcpy(cache, out, (size_t)n * sizeof *out);
    cx = x, cout = out, cn = n, cfp = fp;
}
