// Planted bug (cache keyed on pointers and scalars): replays the last output when x, out, n and the four
// coefficients match.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const double *cx; static double *cout, cc[4], *cache; static int64_t cn = -1;

void poly_eval(int64_t n, const double *x, double c0, double c1, double c2, double c3, double *out) {
    if (cache && x == cx && out == cout && n == cn && c0 == cc[0] && c1 == cc[1] && c2 == cc[2] && c3 == cc[3]) {
        memcpy(out, cache, (size_t)n * sizeof *out);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        out[i] = c0 + v * (c1 + v * (c2 + v * c3));
    }
    free(cache);
    cache = malloc((size_t)(n ? n : 1) * sizeof *cache);
    if (cache && n) memcpy(cache, out, (size_t)n * sizeof *out);
    cx = x, cout = out, cn = n, cc[0] = c0, cc[1] = c1, cc[2] = c2, cc[3] = c3;
}
