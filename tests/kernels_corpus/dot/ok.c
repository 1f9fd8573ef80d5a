// Correct: four independent double accumulators (vectorisable), combined in a fixed order.
#include <stdint.h>

void dot(int64_t n, const double *x, const double *y, double *out) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += x[i] * y[i];
        s1 += x[i + 1] * y[i + 1];
        s2 += x[i + 2] * y[i + 2];
        s3 += x[i + 3] * y[i + 3];
    }
    for (; i < n; i++) s0 += x[i] * y[i];
    *out = (s0 + s1) + (s2 + s3);
}
