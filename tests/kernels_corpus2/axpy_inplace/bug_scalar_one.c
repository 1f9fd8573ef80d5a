// Planted bug (scalar == +-1 shortcut): multiply-free fast paths for alpha = 1 and alpha = -1; the -1 path
// subtracts the wrong way round (x - y instead of y - x).
#include <stdint.h>

void axpy_inplace(int64_t n, double alpha, const double *x, double *y) {
    if (alpha == 1.0) {
        for (int64_t i = 0; i < n; i++) y[i] += x[i];
    } else if (alpha == -1.0) {
        for (int64_t i = 0; i < n; i++) y[i] = x[i] - y[i];
    } else {
        for (int64_t i = 0; i < n; i++) y[i] = alpha * x[i] + y[i];
    }
}
