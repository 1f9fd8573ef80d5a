// Planted bug (NaN/Inf handling): the textbook log1p(exp(x)) overflows to inf for x above ~709.
#include <math.h>
#include <stdint.h>

void softplus(int64_t n, const double *x, double *out) {
    for (int64_t i = 0; i < n; i++) out[i] = log1p(exp(x[i]));
}
