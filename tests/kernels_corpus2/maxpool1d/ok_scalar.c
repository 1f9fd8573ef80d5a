// Correct: starts from the window's first element (so an all -inf window gives -inf), NaN sticks.
#include <stdint.h>

void maxpool1d(int64_t n, const double *x, int64_t k, double *out) {
    for (int64_t i = 0; i < n; i++) {
        int64_t end = i + k < n ? i + k : n;
        double m = x[i];
        for (int64_t j = i + 1; j < end; j++)
            if (x[j] > m || x[j] != x[j]) m = m != m ? m : x[j];
        out[i] = m;
    }
}
