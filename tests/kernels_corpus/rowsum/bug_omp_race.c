// Planted bug (OpenMP race): the reduction dimension is split across threads, which all add into out[r]
// without a reduction clause or atomics.
#include <stdint.h>

void row_sums(int64_t rows, int64_t cols, const float *x, int64_t x_s0, int64_t x_s1, float *out) {
    for (int64_t r = 0; r < rows; r++) {
        out[r] = 0.0f;
        #pragma omp parallel for schedule(static)
        for (int64_t c = 0; c < cols; c++) out[r] += x[r * x_s0 + c * x_s1];
    }
}
