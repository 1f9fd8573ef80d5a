// Private 256-bin histograms per OpenMP thread, merged bin by bin: no atomics in the hot loop, exact counts.
#include <stdint.h>
#include <string.h>

void histogram(int64_t n, const int32_t *x, int32_t *counts) {
    memset(counts, 0, 256 * sizeof(int32_t));
    #pragma omp parallel
    {
        int64_t local[256] = {0};
        #pragma omp for schedule(static) nowait
        for (int64_t i = 0; i < n; i++) {
            const uint32_t v = (uint32_t)x[i];  // negatives wrap to large values and fail the test below
            if (v < 256u) local[v]++;
        }
        #pragma omp critical
        for (int b = 0; b < 256; b++) counts[b] += (int32_t)local[b];
    }
}
