// Planted bug (catastrophic cancellation): one pass, E[x^2] - E[x]^2. Fine for data centred near 0 (all the
// value families are), badly wrong for data with a large offset (e.g. 1e6 + noise).
#include <stdint.h>

void row_var(int64_t rows, int64_t cols, const double *x, int64_t x_s0, int64_t x_s1, double *out) {
    for (int64_t r = 0; r < rows; r++) {
        const double *row = x + r * x_s0;
        double s = 0.0, q = 0.0;
        for (int64_t c = 0; c < cols; c++) {
            double v = row[c * x_s1];
            s += v, q += v * v;
        }
        double m = s / (double)cols;
        out[r] = q / (double)cols - m * m;
    }
}
