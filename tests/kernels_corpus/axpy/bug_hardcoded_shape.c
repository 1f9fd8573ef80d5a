// Planted bug (hard-coded shape): written for the one size it was shown, n = 100000.
#include <stdint.h>

#define N 100000

void axpy(int64_t n, float a, const float *x, const float *y, float *out) {
    (void)n;
    for (int64_t i = 0; i < N; i++) out[i] = a * x[i] + y[i];
}
