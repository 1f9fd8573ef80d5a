// Planted bug (precision drop): float expf/log1pf in the middle range.
#include <math.h>
#include <stdint.h>

void softplus(int64_t n, const double *x, double *out) {
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        if (v > 40.0) out[i] = v;
        else if (v < -40.0) out[i] = exp(v);
        else out[i] = (double)log1pf(expf((float)v));
    }
}
