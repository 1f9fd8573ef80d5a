// Correct: NaN stays NaN (both comparisons are false), lo > hi gives hi as np.minimum(np.maximum()) does.
#include <stdint.h>

void clamp(int64_t n, const float *x, float lo, float hi, float *out) {
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        v = v < lo ? lo : v;
        out[i] = v > hi ? hi : v;
    }
}
