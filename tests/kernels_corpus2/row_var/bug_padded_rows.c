// Planted bug (padded-row view): an inner stride of 1 is taken to mean a contiguous matrix; rows are
// located with cols instead of x_s0.
#include <stdint.h>

void row_var(int64_t rows, int64_t cols, const double *x, int64_t x_s0, int64_t x_s1, double *out) {
    int64_t rs = x_s1 == 1 ? cols : x_s0;
    for (int64_t r = 0; r < rows; r++) {
        const double *row = x + r * rs;
        double s = 0.0;
        for (int64_t c = 0; c < cols; c++) s += row[c * x_s1];
        double m = s / (double)cols, q = 0.0;
        for (int64_t c = 0; c < cols; c++) {
            double d = row[c * x_s1] - m;
            q += d * d;
        }
        out[r] = q / (double)cols;
    }
}
