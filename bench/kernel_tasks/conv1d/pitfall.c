// Pitfall: outputs four at a time with no remainder loop; the last n % 4 outputs are never written.
#include <stdint.h>

void conv1d(int64_t n, int64_t k, const float *x, const float *w, float *out) {
    for (int64_t i = 0; i + 4 <= n; i += 4)
        for (int q = 0; q < 4; q++) {
            double s = 0.0;
            for (int64_t t = 0; t < k; t++) s += (double)x[i + q + t] * w[t];
            out[i + q] = (float)s;
        }
}
