// Squares summed in double: float32 squares of 1e18 overflow and of 1e-18 underflow, doubles hold both.
#include <math.h>
#include <stdint.h>

void l2norm(int64_t n, const float *x, float *out) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    out[0] = (float)sqrt(s);
}
