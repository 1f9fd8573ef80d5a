// Planted bug (precision drop): computes in half precision; off by up to ~5e-4 relative, which a 1e-2
// allclose never notices.
#include <math.h>
#include <stdint.h>

void sigmoid(int64_t n, const float *x, float *out) {
    for (int64_t i = 0; i < n; i++) {
        _Float16 e = (_Float16)expf(-x[i]);
        out[i] = (float)((_Float16)1.0f / ((_Float16)1.0f + e));
    }
}
