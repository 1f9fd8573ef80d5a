/* bench_util.h — what the standalone benchmarks in native/tools share: a monotonic clock, integer settings from the
 * environment, and ISA=N to pin a kernel set (the enum's value, as CKLS_ISA pins one for Python: 1 = avx2). */
#ifndef CKLS_BENCH_UTIL_H
#define CKLS_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "internal.h"

static inline double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static inline int env(const char *name, int def) { return getenv(name) ? atoi(getenv(name)) : def; }

/* ISA=N from the environment, if set: 0 when pinned (or not asked), else the message printed and 2 */
static inline int pin_isa_from_env(void) {
    if (getenv("ISA") && ckls_set_isa(env("ISA", 0))) {
        fprintf(stderr, "ISA %s: not available here\n", getenv("ISA"));
        return 2;
    }
    return 0;
}

#endif
