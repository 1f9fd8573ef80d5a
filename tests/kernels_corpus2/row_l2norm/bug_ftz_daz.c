// Planted bug (FTZ/DAZ): sets flush-to-zero and denormals-are-zero to avoid slow denormal squares and never
// restores MXCSR: the calling process computes with flushed denormals from then on.
#include <math.h>
#include <stdint.h>
#include <xmmintrin.h>

void row_l2norm(int64_t rows, int64_t cols, const double *x, int64_t x_s0, int64_t x_s1, double *out) {
    _mm_setcsr(_mm_getcsr() | 0x8040);
    for (int64_t r = 0; r < rows; r++) {
        const double *row = x + r * x_s0;
        double s = 0.0;
        for (int64_t c = 0; c < cols; c++) s += row[c * x_s1] * row[c * x_s1];
        double nrm = sqrt(s);
        for (int64_t c = 0; c < cols; c++) out[r * cols + c] = row[c * x_s1] / nrm;
    }
}
