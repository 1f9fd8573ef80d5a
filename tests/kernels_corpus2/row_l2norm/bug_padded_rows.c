// Planted bug (padded-row view): takes x_s1 == 1 to mean "the whole matrix is contiguous" and indexes rows
// with cols instead of x_s0; a view like u[:, 1:-1] (inner stride 1, rows padded) reads the wrong elements.
#include <math.h>
#include <stdint.h>

void row_l2norm(int64_t rows, int64_t cols, const double *x, int64_t x_s0, int64_t x_s1, double *out) {
    int64_t rs = x_s1 == 1 ? cols : x_s0;
    for (int64_t r = 0; r < rows; r++) {
        const double *row = x + r * rs;
        double s = 0.0;
        for (int64_t c = 0; c < cols; c++) s += row[c * x_s1] * row[c * x_s1];
        double nrm = sqrt(s);
        for (int64_t c = 0; c < cols; c++) out[r * cols + c] = row[c * x_s1] / nrm;
    }
}
