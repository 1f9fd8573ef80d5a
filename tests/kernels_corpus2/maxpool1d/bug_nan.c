// Planted bug (NaN handling): fmax drops NaNs (it returns the other operand).
#include <math.h>
#include <stdint.h>

void maxpool1d(int64_t n, const double *x, int64_t k, double *out) {
    for (int64_t i = 0; i < n; i++) {
        int64_t end = i + k < n ? i + k : n;
        double m = x[i];
        for (int64_t j = i + 1; j < end; j++) m = fmax(m, x[j]);
        out[i] = m;
    }
}
