// Planted bug (FTZ/DAZ): switches on flush-to-zero and denormals-are-zero to dodge slow denormal exp results
// and leaves MXCSR that way for the caller.
#include <math.h>
#include <stdint.h>
#include <xmmintrin.h>

void softplus(int64_t n, const double *x, double *out) {
    _mm_setcsr(_mm_getcsr() | 0x8040);
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        out[i] = (v > 0.0 ? v : 0.0) + log1p(exp(-fabs(v)));
        if (v != v) out[i] = v;
    }
}
