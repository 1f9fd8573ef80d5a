// Planted bug (precision drop): evaluates in float.
#include <stdint.h>

void poly_eval(int64_t n, const double *x, double c0, double c1, double c2, double c3, double *out) {
    for (int64_t i = 0; i < n; i++) {
        float v = (float)x[i];
        out[i] = (double)((float)c0 + v * ((float)c1 + v * ((float)c2 + v * (float)c3)));
    }
}
