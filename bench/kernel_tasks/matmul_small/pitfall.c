// Pitfall: a and b are taken as contiguous row-major; transposed or padded operands give wrong products.
#include <stdint.h>

void matmul(int64_t m, int64_t n, int64_t k, const float *a, int64_t a_s0, int64_t a_s1, const float *b,
            int64_t b_s0, int64_t b_s1, float *c) {
    (void)a_s0, (void)a_s1, (void)b_s0, (void)b_s1;
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0.0;
            for (int64_t p = 0; p < k; p++) s += (double)a[i * k + p] * b[p * n + j];
            c[i * n + j] = (float)s;
        }
}
