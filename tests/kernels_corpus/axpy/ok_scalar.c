// Correct: plain loop; the compiler vectorises it and handles the tail. Safe when out == y.
#include <stdint.h>

void axpy(int64_t n, float a, const float *x, const float *y, float *out) {
    for (int64_t i = 0; i < n; i++) out[i] = a * x[i] + y[i];
}
