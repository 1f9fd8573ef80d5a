// Planted bug (OpenMP race above a size threshold): from 100000 elements on, the columns of each row are
// split across threads, which add into shared sums without a reduction.
#include <stdint.h>

void row_var(int64_t rows, int64_t cols, const double *x, int64_t x_s0, int64_t x_s1, double *out) {
    for (int64_t r = 0; r < rows; r++) {
        const double *row = x + r * x_s0;
        double s = 0.0, q = 0.0;
        #pragma omp parallel for if (rows * cols >= 100000)
        for (int64_t c = 0; c < cols; c++) s += row[c * x_s1];
        double m = s / (double)cols;
        #pragma omp parallel for if (rows * cols >= 100000)
        for (int64_t c = 0; c < cols; c++) q += (row[c * x_s1] - m) * (row[c * x_s1] - m);
        out[r] = q / (double)cols;
    }
}
