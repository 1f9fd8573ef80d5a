// Correct: plain loop (the compiler may contract alpha*x + y to an fma: within the f64 tolerance).
#include <stdint.h>

void axpy_inplace(int64_t n, double alpha, const double *x, double *y) {
    for (int64_t i = 0; i < n; i++) y[i] = alpha * x[i] + y[i];
}
