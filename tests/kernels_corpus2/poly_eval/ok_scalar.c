// Correct: Horner's rule in the original's order.
#include <stdint.h>

void poly_eval(int64_t n, const double *x, double c0, double c1, double c2, double c3, double *out) {
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        out[i] = c0 + v * (c1 + v * (c2 + v * c3));
    }
}
