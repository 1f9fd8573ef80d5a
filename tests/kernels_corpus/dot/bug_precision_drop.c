// Planted bug (precision drop): accumulates a double dot product in float.
#include <stdint.h>

void dot(int64_t n, const double *x, const double *y, double *out) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += (float)(x[i] * y[i]);
    *out = s;
}
