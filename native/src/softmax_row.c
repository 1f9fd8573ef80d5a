/* softmax_row.c — scalar references of the row kernels of attention and the loss (ckls_isa_kernels.exp_shift,
 * .softmax): a polynomial exp and the softmax of one row (with its log-sum-exp). softmax_row_avx2.c
 * holds their AVX2 versions, the same polynomial on 8 lanes. */
#include <math.h>

#include "internal.h"

/* exp(x) = 2^k * e^r (internal.h: CKLS_EXP_*) */
static inline float exp_poly(float x) {
    if (!(x >= CKLS_EXP_LO)) return 0.0f; /* NaN too */
    x = x > CKLS_EXP_HI ? CKLS_EXP_HI : x;
    const float k = fmaf(x, CKLS_EXP_LOG2E, CKLS_EXP_SHIFTER) - CKLS_EXP_SHIFTER;
    const float r = fmaf(k, CKLS_EXP_LN2_LO, fmaf(k, CKLS_EXP_LN2_HI, x));
    float p = fmaf(CKLS_EXP_C6, r, CKLS_EXP_C5);
    p = fmaf(p, r, CKLS_EXP_C4);
    p = fmaf(p, r, CKLS_EXP_C3);
    p = fmaf(p, r, CKLS_EXP_C2);
    p = fmaf(p, r, 1.0f);
    p = fmaf(p, r, 1.0f);
    return ldexpf(p, (int)k);
}

double ckls_exp_shift_ref(float *y, const float *x, int64_t n, float shift) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += y[i] = exp_poly(x[i] - shift);
    return s;
}

float ckls_softmax_ref(float *p, int64_t n) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) mx = p[i] > mx ? p[i] : mx;
    const double sum = ckls_exp_shift_ref(p, p, n, mx);
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) p[i] *= inv;
    return (float)(mx + log(sum));
}
