// Correct: a private histogram per thread, merged under a critical section (integer sums: order-free).
#include <stdint.h>
#include <string.h>

void histogram(int64_t n, const int32_t *x, int32_t *counts) {
    memset(counts, 0, 256 * sizeof *counts);
    #pragma omp parallel if (n > 8192)
    {
        int32_t local[256] = {0};
        #pragma omp for schedule(static)
        for (int64_t i = 0; i < n; i++) local[x[i]]++;
        #pragma omp critical
        for (int v = 0; v < 256; v++) counts[v] += local[v];
    }
}
