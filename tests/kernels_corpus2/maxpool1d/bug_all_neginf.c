// Planted bug (all -inf window): the running max starts at -DBL_MAX, so a window of only -inf answers
// -DBL_MAX instead of -inf.
#include <float.h>
#include <stdint.h>

void maxpool1d(int64_t n, const double *x, int64_t k, double *out) {
    for (int64_t i = 0; i < n; i++) {
        int64_t end = i + k < n ? i + k : n;
        double m = -DBL_MAX;
        for (int64_t j = i; j < end; j++)
            if (x[j] > m || x[j] != x[j]) m = m != m ? m : x[j];
        out[i] = m;
    }
}
