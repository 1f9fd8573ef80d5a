// Correct: window offsets outside, positions inside, so the inner loop vectorises; NaN-sticky max.
#include <stdint.h>
#include <string.h>

void maxpool1d(int64_t n, const double *x, int64_t k, double *out) {
    if (n == 0) return;
    memcpy(out, x, (size_t)n * sizeof *out);
    for (int64_t j = 1; j < k && j < n; j++) {
        const double *xj = x + j;
        for (int64_t i = 0; i + j < n; i++) {
            double m = out[i], v = xj[i];
            out[i] = (m != m) ? m : (v > m || v != v) ? v : m;
        }
    }
}
