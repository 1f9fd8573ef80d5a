// Pitfall: eight lanes at a time, and the last n % 8 elements are never written.
#include <math.h>
#include <stdint.h>

void silu(int64_t n, const float *x, float *out) {
    for (int64_t i = 0; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) out[i + j] = x[i + j] / (1.0f + expf(-x[i + j]));
}
