// Planted bug (wrong fast path for multiples of 64): the block path for n % 64 == 0 uses the
// x > 0 ? x : log1p(exp(x)) split, losing log1p(exp(-x)) for positive x.
#include <math.h>
#include <stdint.h>

void softplus(int64_t n, const double *x, double *out) {
    int fast = n > 0 && n % 64 == 0;
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        if (fast) out[i] = v > 0.0 ? v : log1p(exp(v));
        else {
            out[i] = (v > 0.0 ? v : 0.0) + log1p(exp(-fabs(v)));
            if (v != v) out[i] = v;
        }
    }
}
