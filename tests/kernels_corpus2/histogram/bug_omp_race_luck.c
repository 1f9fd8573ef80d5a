// Planted bug (OpenMP race with a small window): threads increment the shared counts without atomics; a lost
// update needs two threads to hit the same bin in the same few cycles.
#include <stdint.h>
#include <string.h>

void histogram(int64_t n, const int32_t *x, int32_t *counts) {
    memset(counts, 0, 256 * sizeof *counts);
    #pragma omp parallel for schedule(static) if (n > 8192)
    for (int64_t i = 0; i < n; i++) counts[x[i]]++;
}
