/* test_util.h — what every native test shares: the CHECK counter macro, a seeded xorshift generator, the seed
 * (fresh each run, printed, replayed from argv[1]) and the closing "N passed, N failed" line. */
#ifndef CKLS_TEST_UTIL_H
#define CKLS_TEST_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

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
/* The run's seed: argv[1] when given (to replay a failure), else a fresh one from the clock; printed under the
 * test's name and loaded into the generator. */
static inline uint64_t test_seed(int argc, char **argv, const char *name) {
    uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)clock() << 32;
    if (!seed) seed = 1; /* xorshift's one fixed point */
    printf("%s seed %llu\n", name, (unsigned long long)seed);
    rng_state = seed;
    return seed;
}

/* the closing line; the test's exit status */
static inline int test_report(void) {
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail != 0;
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

/* The worst |a - b| over its rounding bound tol * mag + 2^-22 |b|, where mag[i] is the sum of the magnitudes of
 * the products that b[i] adds up (the reference run on |operands|): a sum's rounding scales with its terms, not with
 * its result, so an output that nearly cancels must not fail a relative test. <= 1 passes; NaN fails. */
static inline double bound_err(const float *a, const float *b, const float *mag, double tol, int64_t n) {
    double e = 0;
    for (int64_t i = 0; i < n; i++) {
        const double d = fabs((double)a[i] - b[i]) / (tol * mag[i] + ldexp(fabs((double)b[i]), -22) + 1e-30);
        if (isnan(d)) return INFINITY;
        e = d > e ? d : e;
    }
    return e;
}

/* |x| of each element: the operands of a magnitude run */
static inline float *abs_copy(const float *x, int64_t n) {
    float *p = malloc(sizeof(float) * (size_t)(n ? n : 1));
    if (!p) { printf("out of memory\n"); exit(2); }
    for (int64_t i = 0; i < n; i++) p[i] = fabsf(x[i]);
    return p;
}

#endif
