/* kernel_rows.c — a row loop over one ISA's dot kernel, so benchmarks and tests can time a whole weight matrix
 * with one call from Python, four rows at a time through the ISA's 4-row kernel where it has one (as a matmul
 * would). */
#include "quant.h"

int ckls_kernel_vec_dot_rows(int isa, int type, int64_t n_rows, int64_t n, const void *w, const void *xq,
                             float *out) {
    const ckls_isa_kernels *k = ckls_isa_table(isa);
    if (!k) return ckls_fail(CKLS_EINVAL, "ISA %d is not available", isa);
    const ckls_type_info *t = ckls_type_get(type);
    if (!t || !k->vec_dot[type]) return ckls_fail(CKLS_EINVAL, "no dot kernel for type %d", type);
    if (n < 0 || n % t->blck) return ckls_fail(CKLS_EINVAL, "row of %lld is not a multiple of %s's block of %lld",
                                              (long long)n, t->name, (long long)t->blck);
    if (n_rows < 0) return ckls_fail(CKLS_EINVAL, "negative row count");
    if (n_rows > 0 && (!w || !xq || !out)) return ckls_fail(CKLS_EINVAL, "NULL buffer");
    const int64_t rb = n / t->blck * t->size;
    int64_t r = 0;
    for (; r + 4 <= n_rows; r += 4) ckls_vec_dot_4r(k, type, n, out + r, (const char *)w + r * rb, rb, xq);
    for (; r < n_rows; r++) k->vec_dot[type](n, out + r, (const char *)w + r * rb, xq);
    return CKLS_OK;
}
