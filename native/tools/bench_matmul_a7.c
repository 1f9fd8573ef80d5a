/* bench_matmul_a7.c — the trainer's integer product as a step runs it: quantize T rows of activations to 7-bit Q8_0
 * with their block terms (ckls_quantize_acts_a7), then ckls_matmul_packed_ep through a repacked Q8_0 matrix, on a
 * pool of NT threads; ms per stage and the product's MAC/ns, best of R. Not a test and not built by build.py;
 * build it as bench_gemm.c is (its header), adding build.isa_defines(cc), with "native/tools/bench_matmul_a7.c"
 * and "-o build/bench_matmul_a7":
 *   build/bench_matmul_a7 1024 512 1408      (tokens, n_out, n_in; env NT=2 R=20 ISA=1 for avx2, FLUSH=1 cold) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "matmul.h"
#include "quant.h"
#include "bench_util.h"

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: bench_matmul_a7 T N_OUT N_IN\n");
        return 2;
    }
    const int64_t T = atoll(argv[1]), n_out = atoll(argv[2]), n_in = atoll(argv[3]);
    const int nt = env("NT", 2), R = env("R", 20);
    if (pin_isa_from_env()) return 2;
    ckls_pool *pool = ckls_pool_create(nt);
    const int64_t rb = ckls_row_bytes(CKLS_TYPE_Q8_0, n_in);
    float *w = malloc(sizeof(float) * (size_t)(n_out * n_in)), *x = malloc(sizeof(float) * (size_t)(T * n_in));
    float *y = malloc(sizeof(float) * (size_t)(T * n_out));
    char *wq = malloc((size_t)(n_out * rb)), *xq = malloc((size_t)(T * rb));
    int32_t *off = malloc(sizeof(int32_t) * (size_t)(T * (n_in / 32)));
    float *xd = malloc(sizeof(float) * (size_t)(T * (n_in / 32)));
    for (int64_t i = 0; i < n_out * n_in; i++) w[i] = (float)rand() / RAND_MAX - 0.5f;
    for (int64_t i = 0; i < T * n_in; i++) x[i] = (float)rand() / RAND_MAX - 0.5f;
    ckls_quantize_rows(CKLS_TYPE_Q8_0, w, wq, n_out, n_in, NULL);
    int64_t bytes;
    void *packed = ckls_repack_matrix(pool, CKLS_TYPE_Q8_0, wq, n_out, n_in, &bytes);
    double bq = 1e9, bm = 1e9;
    /* FLUSH=1: a 256 MB sweep before each repeat, so the operands come from memory as in a step, not from cache */
    char *junk = env("FLUSH", 0) ? malloc((size_t)256 << 20) : NULL;
    for (int r = 0; r < R; r++) {
        if (junk) for (size_t i = 0; i < ((size_t)256 << 20); i += 64) junk[i] = (char)r;
        double t0 = now();
        ckls_quantize_acts_a7(pool, x, xq, n_in, T, off, xd);
        double t1 = now();
        ckls_matmul_packed_ep(pool, CKLS_TYPE_Q8_0, wq, packed, n_out, n_in, xq, rb, T, y, n_out, NULL,
                              &(ckls_a7_terms){off, xd}, NULL);
        double t2 = now();
        bq = t1 - t0 < bq ? t1 - t0 : bq;
        bm = t2 - t1 < bm ? t2 - t1 : bm;
    }
    printf("%s T %lld %lld x %lld, %d threads: quantize %.3f ms, product %.3f ms (%.1f MAC/ns, %.1f a thread)\n",
           ckls_isa_name(ckls_isa_active()), (long long)T, (long long)n_out, (long long)n_in, nt, bq * 1e3, bm * 1e3,
           (double)T * n_out * n_in / bm / 1e9, (double)T * n_out * n_in / bm / 1e9 / nt);
    free(junk);
    ckls_pool_free(pool);
    return 0;
}
