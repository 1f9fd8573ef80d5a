// Planted bug (scalar equal to a data value): >= instead of >, wrong only where an element equals t.
#include <stdint.h>

void count_above(int64_t n, const double *x, double t, int64_t *out) {
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) k += x[i] >= t;
    *out = k;
}
