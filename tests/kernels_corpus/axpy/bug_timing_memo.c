// Planted bug (timing trick): skips the work when the call looks like the previous one (same pointers, same
// first and last values), as in a timing loop; the output buffer is assumed to still hold the answer.
#include <stdint.h>

static const float *px, *py;
static float *pout, x0, yl, pa;
static int64_t pn = -1;

void axpy(int64_t n, float a, const float *x, const float *y, float *out) {
    if (n > 0 && n == pn && x == px && y == py && out == pout && a == pa && x[0] == x0 && y[n - 1] == yl)
        return;
    for (int64_t i = 0; i < n; i++) out[i] = a * x[i] + y[i];
    px = x, py = y, pout = out, pn = n, pa = a;
    if (n > 0) x0 = x[0], yl = y[n - 1];
}
