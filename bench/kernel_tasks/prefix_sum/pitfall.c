// Pitfall: a four-wide unrolled scan whose remainder loop was left out: the last n % 4 outputs are unset.
#include <stdint.h>

void prefix_sum(int64_t n, const float *x, float *out) {
    double s = 0.0;
    for (int64_t i = 0; i + 4 <= n; i += 4) {
        out[i] = (float)(s += x[i]);
        out[i + 1] = (float)(s += x[i + 1]);
        out[i + 2] = (float)(s += x[i + 2]);
        out[i + 3] = (float)(s += x[i + 3]);
    }
}
