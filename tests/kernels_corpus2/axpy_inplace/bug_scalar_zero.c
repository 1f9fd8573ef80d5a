// Planted bug (scalar == 0 shortcut): alpha == 0 returns without touching y, as BLAS does; but the original
// computes 0*x + y, which is NaN where x is inf or NaN.
#include <stdint.h>

void axpy_inplace(int64_t n, double alpha, const double *x, double *y) {
    if (alpha == 0.0) return;
    for (int64_t i = 0; i < n; i++) y[i] = alpha * x[i] + y[i];
}
