// Correct: sum of squares in double over the strided row, then one division per element (as the original).
#include <math.h>
#include <stdint.h>

void row_l2norm(int64_t rows, int64_t cols, const double *x, int64_t x_s0, int64_t x_s1, double *out) {
    for (int64_t r = 0; r < rows; r++) {
        const double *row = x + r * x_s0;
        double s = 0.0;
        for (int64_t c = 0; c < cols; c++) s += row[c * x_s1] * row[c * x_s1];
        double nrm = sqrt(s);
        for (int64_t c = 0; c < cols; c++) out[r * cols + c] = row[c * x_s1] / nrm;
    }
}
