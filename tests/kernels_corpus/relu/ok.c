// Correct: x < 0 is false for NaN, so NaN passes through as it does in NumPy.
#include <stdint.h>

void relu(int64_t n, const float *x, float *out) {
    for (int64_t i = 0; i < n; i++) out[i] = x[i] < 0.0f ? 0.0f : x[i];
}
