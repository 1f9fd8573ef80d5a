// Planted bug (out-of-bounds read): the last windows are not cut at the end of x; they read up to k - 1
// elements past it.
#include <stdint.h>

void maxpool1d(int64_t n, const double *x, int64_t k, double *out) {
    for (int64_t i = 0; i < n; i++) {
        double m = x[i];
        for (int64_t j = i + 1; j < i + k; j++)
            if (x[j] > m || x[j] != x[j]) m = m != m ? m : x[j];
        out[i] = m;
    }
}
