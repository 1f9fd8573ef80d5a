// Planted bug (strides): assumes a contiguous row-major matrix and ignores the strides it is given.
#include <stdint.h>

void row_sums(int64_t rows, int64_t cols, const float *x, int64_t x_s0, int64_t x_s1, float *out) {
    (void)x_s0, (void)x_s1;
    #pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        double s = 0.0;
        for (int64_t c = 0; c < cols; c++) s += x[r * cols + c];
        out[r] = (float)s;
    }
}
