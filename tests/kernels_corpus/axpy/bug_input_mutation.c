// Planted bug (input mutation): accumulates into y (a const input) and copies it out.
#include <stdint.h>

void axpy(int64_t n, float a, const float *x, const float *y, float *out) {
    float *yy = (float *)y;
    for (int64_t i = 0; i < n; i++) {
        yy[i] += a * x[i];
        out[i] = yy[i];
    }
}
