// Planted bug (precision drop): does the arithmetic in float "because it is twice as wide per vector".
#include <stdint.h>

void axpy_inplace(int64_t n, double alpha, const double *x, double *y) {
    const float a = (float)alpha;
    for (int64_t i = 0; i < n; i++) y[i] = (double)(a * (float)x[i] + (float)y[i]);
}
