// Correct: AVX2 when the row is contiguous (x_s1 == 1; the row start still comes from x_s0), scalar gather
// otherwise. Four partial sums, so the rounding differs slightly from the original's: within tolerance.
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

void row_l2norm(int64_t rows, int64_t cols, const double *x, int64_t x_s0, int64_t x_s1, double *out) {
    for (int64_t r = 0; r < rows; r++) {
        const double *row = x + r * x_s0;
        double *o = out + r * cols;
        double s = 0.0;
        int64_t c = 0;
        if (x_s1 == 1) {
            __m256d acc = _mm256_setzero_pd();
            for (; c + 4 <= cols; c += 4) {
                __m256d v = _mm256_loadu_pd(row + c);
                acc = _mm256_fmadd_pd(v, v, acc);
            }
            double t[4];
            _mm256_storeu_pd(t, acc);
            s = (t[0] + t[1]) + (t[2] + t[3]);
        }
        for (; c < cols; c++) s += row[c * x_s1] * row[c * x_s1];
        double nrm = sqrt(s);
        for (c = 0; c < cols; c++) o[c] = row[c * x_s1] / nrm;
    }
}
