/* row_sums.h — the double-precision row sums of the norms (forward and backward), in eight lanes: the same
 * precision as one running double, but eight independent chains the compiler vectorizes, where one chain waits
 * four cycles an element on its own add (the norms' backward was 1% of a training step on that wait). */
#ifndef CKLS_ROW_SUMS_H
#define CKLS_ROW_SUMS_H

#include <stdint.h>

/* sum of x[i] * y[i] * (w ? w[i] : 1), in double */
static inline double row_dot_f64(const float *x, const float *y, const float *w, int64_t n) {
    double s[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    int64_t i = 0;
    if (w)
        for (; i + 8 <= n; i += 8)
            for (int l = 0; l < 8; l++) s[l] += (double)x[i + l] * y[i + l] * w[i + l];
    else
        for (; i + 8 <= n; i += 8)
            for (int l = 0; l < 8; l++) s[l] += (double)x[i + l] * y[i + l];
    for (; i < n; i++) s[0] += (double)x[i] * y[i] * (w ? w[i] : 1.0f);
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

#endif
