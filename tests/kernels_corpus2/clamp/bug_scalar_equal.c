// Planted bug (scalars equal to each other): when lo == hi the answer is "obviously" the constant lo, but a
// NaN in x must stay NaN.
#include <stdint.h>

void clamp(int64_t n, const float *x, float lo, float hi, float *out) {
    if (lo == hi) {
        for (int64_t i = 0; i < n; i++) out[i] = lo;
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        v = v < lo ? lo : v;
        out[i] = v > hi ? hi : v;
    }
}
