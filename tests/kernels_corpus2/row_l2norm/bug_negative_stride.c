// Planted bug (negative strides): a row with a negative inner stride is walked forwards in memory "for the
// prefetcher"; the sum is right, but the outputs are written in memory order, i.e. reversed.
#include <math.h>
#include <stdint.h>

void row_l2norm(int64_t rows, int64_t cols, const double *x, int64_t x_s0, int64_t x_s1, double *out) {
    for (int64_t r = 0; r < rows; r++) {
        const double *row = x + r * x_s0;
        int64_t s1 = x_s1;
        if (s1 < 0) row += (cols - 1) * s1, s1 = -s1;
        double s = 0.0;
        for (int64_t c = 0; c < cols; c++) s += row[c * s1] * row[c * s1];
        double nrm = sqrt(s);
        for (int64_t c = 0; c < cols; c++) out[r * cols + c] = row[c * s1] / nrm;
    }
}
