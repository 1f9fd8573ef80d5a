// Correct: max(x, 0) + log1p(exp(-|x|)); exact for large |x|, NaN propagates, +-inf give inf and 0.
#include <math.h>
#include <stdint.h>

void softplus(int64_t n, const double *x, double *out) {
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        out[i] = (v > 0.0 ? v : 0.0) + log1p(exp(-fabs(v)));
        if (v != v) out[i] = v;
    }
}
