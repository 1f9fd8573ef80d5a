/* softmax_row.c — scalar references of the row kernels of attention and the loss (ckls_isa_kernels.exp_shift,
 * .softmax): a polynomial exp and the softmax of one row (with its log-sum-exp). softmax_row_avx2.c
 * holds their AVX2 versions, the same polynomial on 8 lanes. */
#include <math.h>

#include "internal.h"

/* exp(x) = 2^k * e^r, k = round(x / ln 2), |r| <= ln 2 / 2, e^r by Cephes' degree-7 polynomial */
static inline float exp_poly(float x) {
    if (!(x >= CKLS_EXP_LO)) return 0.0f; /* NaN too */
    x = x > CKLS_EXP_HI ? CKLS_EXP_HI : x;
    const float k = nearbyintf(x * 1.44269504088896341f);
    const float r = fmaf(k, 2.12194440e-4f, fmaf(k, -0.693359375f, x));
    float p = 1.9875691500e-4f;
    p = fmaf(p, r, 1.3981999507e-3f);
    p = fmaf(p, r, 8.3334519073e-3f);
    p = fmaf(p, r, 4.1665795894e-2f);
    p = fmaf(p, r, 1.6666665459e-1f);
    p = fmaf(p, r, 5.0000001201e-1f);
    p = fmaf(p, r * r, r) + 1.0f;
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
