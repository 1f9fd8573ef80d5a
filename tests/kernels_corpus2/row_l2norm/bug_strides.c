// Planted bug (strides): ignores the strides and reads x as contiguous row-major.
#include <math.h>
#include <stdint.h>

void row_l2norm(int64_t rows, int64_t cols, const double *x, int64_t x_s0, int64_t x_s1, double *out) {
    (void)x_s0, (void)x_s1;
    for (int64_t r = 0; r < rows; r++) {
        const double *row = x + r * cols;
        double s = 0.0;
        for (int64_t c = 0; c < cols; c++) s += row[c] * row[c];
        double nrm = sqrt(s);
        for (int64_t c = 0; c < cols; c++) out[r * cols + c] = row[c] / nrm;
    }
}
