// Planted bug (cache keyed on a data fingerprint): remembers the result for (x, y, n, alpha) together with a
// fingerprint of a few elements of x and of the incoming y, and replays it on a match. A caller that changes
// an element outside the fingerprint gets a stale answer.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const double *cx; static double *cy, calpha, *cache; static int64_t cn = -1;
static double fp_in[8];

static void fingerprint(int64_t n, const double *x, const double *y, double *fp) {
    for (int k = 0; k < 4; k++) {
        int64_t i = n ? (n - 1) * k / 3 : 0;
        fp[2 * k] = n ? x[i] : 0.0;
        fp[2 * k + 1] = n ? y[i] : 0.0;
    }
}

void axpy_inplace(int64_t n, double alpha, const double *x, double *y) {
    double fp[8];
    fingerprint(n, x, y, fp);
    if (cache && x == cx && y == cy && n == cn && alpha == calpha && memcmp(fp, fp_in, sizeof fp) == 0) {
        memcpy(y, cache, (size_t)n * sizeof(double));
        return;
    }
    for (int64_t i = 0; i < n; i++) y[i] = alpha * x[i] + y[i];
    free(cache);
    cache = malloc((size_t)(n ? n : 1) * sizeof(double));
    if (cache) memcpy(cache, y, (size_t)n * sizeof(double));
    cx = x, cy = y, cn = n, calpha = alpha;
    memcpy(fp_in, fp, sizeof fp);
}
