// Planted bug (constant-row shortcut): a row whose first and last values are equal is taken as constant
// (variance 0) without looking at the rest.
#include <stdint.h>

void row_var(int64_t rows, int64_t cols, const double *x, int64_t x_s0, int64_t x_s1, double *out) {
    for (int64_t r = 0; r < rows; r++) {
        const double *row = x + r * x_s0;
        if (cols > 1 && row[0] == row[(cols - 1) * x_s1]) { out[r] = 0.0; continue; }
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
