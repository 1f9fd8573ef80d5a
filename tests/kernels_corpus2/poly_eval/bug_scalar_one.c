// Planted bug (scalar == +-1 shortcut): a monic fast path for c3 == 1 that drops the c2 term.
#include <stdint.h>

void poly_eval(int64_t n, const double *x, double c0, double c1, double c2, double c3, double *out) {
    if (c3 == 1.0) {
        for (int64_t i = 0; i < n; i++) out[i] = c0 + x[i] * (c1 + x[i] * x[i]);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        out[i] = c0 + v * (c1 + v * (c2 + v * c3));
    }
}
