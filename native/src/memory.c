/* memory.c — aligned scratch allocations (64 B: one cache line, one AVX-512 register). */
#include <stdlib.h>

#include "internal.h"

void *ckls_aligned_alloc(size_t bytes) {
    void *p = NULL;
    if (bytes == 0) bytes = 64;
    bytes = (bytes + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, bytes) != 0) return NULL;
    memset(p, 0, bytes);
    return p;
}

void ckls_aligned_free(void *p) { free(p); }
