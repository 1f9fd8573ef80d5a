// Planted bug (cache keyed on pointers and scalars): the count of the last call is returned when x, n and t
// are the same, whatever x now holds.
#include <stdint.h>

static const double *cx; static double ct; static int64_t cn = -1, ck;

void count_above(int64_t n, const double *x, double t, int64_t *out) {
    if (x == cx && n == cn && t == ct) { *out = ck; return; }
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) k += x[i] > t;
    *out = ck = k;
    cx = x, cn = n, ct = t;
}
