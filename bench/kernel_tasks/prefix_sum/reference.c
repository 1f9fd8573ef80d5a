// Running total in double: a float total over 300k terms drifts past the float32 tolerance. x[i] is read
// before out[i] is written, so out may be x.
#include <stdint.h>

void prefix_sum(int64_t n, const float *x, float *out) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) {
        s += x[i];
        out[i] = (float)s;
    }
}
