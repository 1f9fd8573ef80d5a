/* test_util.h — what every native test shares: the CHECK counter macro and a seeded xorshift generator.
 * Each test prints its seed and ends with "N passed, N failed". */
#ifndef CKLS_TEST_UTIL_H
#define CKLS_TEST_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>

static int n_pass, n_fail;

#define CHECK(cond, ...)                                                                                          \
    do {                                                                                                          \
        if (cond) n_pass++;                                                                                       \
        else {                                                                                                    \
            n_fail++;                                                                                             \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                                           \
            printf(__VA_ARGS__);                                                                                  \
            printf("\n");                                                                                         \
        }                                                                                                         \
    } while (0)

static uint64_t rng_state;
static inline uint64_t rnd(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}
static inline int rnd_int(int lo, int hi) { return lo + (int)(rnd() % (uint64_t)(hi - lo + 1)); } /* inclusive */
static inline float rnd_unit(void) { return (float)((rnd() >> 40) * (1.0 / 16777216.0)); }       /* [0, 1) */
static inline float rnd_sym(void) { return rnd_unit() * 2.0f - 1.0f; }                            /* [-1, 1) */

/* max |a - b| over max(|b|, 1e-3); NaN anywhere in a counts as infinitely wrong */
static inline double rel_err(const float *a, const float *b, int64_t n) {
    double e = 0, s = 1e-3;
    for (int64_t i = 0; i < n; i++) {
        const double d = fabs((double)a[i] - b[i]);
        if (isnan(d)) return INFINITY; /* so both "< tol" and "> tol" checks, and fmax, see it */
        e = d > e ? d : e;
        s = fabs(b[i]) > s ? fabs(b[i]) : s;
    }
    return e / s;
}

#endif
