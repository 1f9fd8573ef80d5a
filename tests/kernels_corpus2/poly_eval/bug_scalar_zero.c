// Planted bug (scalar == 0 shortcut): with c3 == 0 it evaluates the quadratic c0 + x*(c1 + x*c2); the
// original's x*0 term makes that NaN at x = +-inf.
#include <stdint.h>

void poly_eval(int64_t n, const double *x, double c0, double c1, double c2, double c3, double *out) {
    if (c3 == 0.0) {
        for (int64_t i = 0; i < n; i++) out[i] = c0 + x[i] * (c1 + x[i] * c2);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        out[i] = c0 + v * (c1 + v * (c2 + v * c3));
    }
}
