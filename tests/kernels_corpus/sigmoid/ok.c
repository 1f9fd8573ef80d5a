// Correct: expf in single precision is accurate to about 1 ulp.
#include <math.h>
#include <stdint.h>

void sigmoid(int64_t n, const float *x, float *out) {
    for (int64_t i = 0; i < n; i++) out[i] = 1.0f / (1.0f + expf(-x[i]));
}
