// SiLU with a float exp; for x < -88 expf(-x) is +inf and x/inf is a signed zero, as NumPy gives.
#include <math.h>
#include <stdint.h>

void silu(int64_t n, const float *x, float *out) {
    for (int64_t i = 0; i < n; i++) {
        const float v = x[i];
        out[i] = v / (1.0f + expf(-v));
    }
}
