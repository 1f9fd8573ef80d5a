// Planted bug (timing trick): work is done once per output buffer; repeated calls (a timing loop) return
// at once, leaving whatever the buffer held.
#include <stdint.h>

static float *done_out;
static int64_t done_n = -1;

void axpy(int64_t n, float a, const float *x, const float *y, float *out) {
    if (out == done_out && n == done_n) return;
    for (int64_t i = 0; i < n; i++) out[i] = a * x[i] + y[i];
    done_out = out, done_n = n;
}
