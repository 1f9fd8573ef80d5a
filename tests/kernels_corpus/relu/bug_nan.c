// Planted bug (NaN handling): fmaxf returns the number when one operand is NaN, so NaN becomes 0.
#include <math.h>
#include <stdint.h>

void relu(int64_t n, const float *x, float *out) {
    for (int64_t i = 0; i < n; i++) out[i] = fmaxf(x[i], 0.0f);
}
