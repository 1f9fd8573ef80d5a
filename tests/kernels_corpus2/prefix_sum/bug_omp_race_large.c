// Planted bug (OpenMP race above a size threshold): the parallel two-pass scan (used from n = 65536 on)
// lacks the barrier between writing the chunk sums and reading them.
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>

void prefix_sum(int64_t n, const int64_t *x, int64_t *out) {
    int64_t *sums = n >= 65536 ? calloc((size_t)omp_get_max_threads() + 1, sizeof *sums) : NULL;
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
        int64_t off = 0;
        for (int k = 0; k < t; k++) off += sums[k];
        for (int64_t i = lo; i < hi; i++) out[i] += off;
    }
    free(sums);
}
