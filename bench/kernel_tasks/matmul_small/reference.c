// Rows of c split across OpenMP threads; each dot product summed in double in a fixed order, so the bits
// do not depend on the thread count and products near 1e36 cannot overflow the sum. Strides honoured.
#include <stdint.h>

void matmul(int64_t m, int64_t n, int64_t k, const float *a, int64_t a_s0, int64_t a_s1, const float *b,
            int64_t b_s0, int64_t b_s1, float *c) {
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            double s = 0.0;
            for (int64_t p = 0; p < k; p++) s += (double)a[i * a_s0 + p * a_s1] * b[p * b_s0 + j * b_s1];
            c[i * n + j] = (float)s;
        }
    }
}
