// Correct: two passes over one chunk per thread (local scans, then each chunk adds the sums of the chunks
// before it, read after a barrier). Integer sums, so the result does not depend on the thread count.
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>

void prefix_sum(int64_t n, const int64_t *x, int64_t *out) {
    if (n < 4096) {
        int64_t s = 0;
        for (int64_t i = 0; i < n; i++) out[i] = s += x[i];
        return;
    }
    int64_t *sums = calloc((size_t)omp_get_max_threads() + 1, sizeof *sums);
    if (!sums) {
        int64_t s = 0;
        for (int64_t i = 0; i < n; i++) out[i] = s += x[i];
        return;
    }
    #pragma omp parallel
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        int64_t lo = n * t / nt, hi = n * (t + 1) / nt, s = 0;
        for (int64_t i = lo; i < hi; i++) out[i] = s += x[i];
        sums[t] = s;
        #pragma omp barrier
        int64_t off = 0;
        for (int k = 0; k < t; k++) off += sums[k];
        for (int64_t i = lo; i < hi; i++) out[i] += off;
    }
    free(sums);
}
