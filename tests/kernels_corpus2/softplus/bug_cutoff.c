// Planted bug (approximation cut-off in an undrawn value range): returns x from x > 20 on; the dropped
// exp(-x) is ~2e-9, a relative error of 1e-10 at x = 20, above the f64 tolerance for x in (20, ~23).
#include <math.h>
#include <stdint.h>

void softplus(int64_t n, const double *x, double *out) {
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        if (v > 20.0) out[i] = v;
        else if (v < -40.0) out[i] = exp(v);
        else out[i] = log1p(exp(v));
    }
}
