// Pitfall: a float accumulator; squares of 1e18 overflow to inf and squares of 1e-18 underflow.
#include <math.h>
#include <stdint.h>

void l2norm(int64_t n, const float *x, float *out) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += x[i] * x[i];
    out[0] = sqrtf(s);
}
