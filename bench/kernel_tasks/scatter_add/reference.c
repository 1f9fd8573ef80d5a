// Sums per bin in a double scratch array (one rounding to float at the end), so a bin that collects 100k
// values keeps float32 accuracy; the floor modulo maps negative indices from the end.
#include <stdint.h>
#include <stdlib.h>

void scatter_add(int64_t n, int64_t bins, const int32_t *idx, const float *vals, float *acc) {
    double *sum = malloc((size_t)bins * sizeof(double));
    if (!sum) {  // no scratch: accumulate in float (less accurate, still defined)
        for (int64_t i = 0; i < n; i++) {
            int64_t b = idx[i] % bins;
            acc[b < 0 ? b + bins : b] += vals[i];
        }
        return;
    }
    for (int64_t b = 0; b < bins; b++) sum[b] = acc[b];
    for (int64_t i = 0; i < n; i++) {
        int64_t b = idx[i] % bins;
        sum[b < 0 ? b + bins : b] += vals[i];
    }
    for (int64_t b = 0; b < bins; b++) acc[b] = (float)sum[b];
    free(sum);
}
