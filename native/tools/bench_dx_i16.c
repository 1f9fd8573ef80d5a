/* bench_dx_i16.c — the vocabulary dX as the integer mode runs it without bf16 products: dy.W in int16
 * (ckls_matmul_dx_i16) against the f32 tile's (ckls_matmul_dx), on a pool of NT threads, ms and MAC/ns, best of R;
 * and the int16 result's largest error relative to the f32 one's largest output. Not a test and not built by
 * build.py; build it as bench_gemm.c is (its header), adding build.isa_defines(cc), with
 * "native/tools/bench_dx_i16.c" and "-o build/bench_dx_i16":
 *   build/bench_dx_i16 1024 16384 512      (tokens, n_out = vocabulary, n_in; env NT=2 R=5 ISA=1 for avx2) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "backward.h"
#include "quant.h"
#include "bench_util.h"

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: bench_dx_i16 T N_OUT N_IN\n");
        return 2;
    }
    const int64_t T = atoll(argv[1]), n_out = atoll(argv[2]), n_in = atoll(argv[3]);
    const int nt = env("NT", 2), R = env("R", 5);
    if (pin_isa_from_env()) return 2;
    if (!ckls_active_kernels()->gemm_i16x8) {
        fprintf(stderr, "no int16 kernels on %s\n", ckls_isa_name(ckls_isa_active()));
        return 2;
    }
    ckls_pool *pool = ckls_pool_create(nt);
    const int64_t rb = ckls_row_bytes(CKLS_TYPE_Q8_0, n_in);
    float *w = malloc(sizeof(float) * (size_t)(n_out * n_in)), *dy = malloc(sizeof(float) * (size_t)(T * n_out));
    float *d0 = malloc(sizeof(float) * (size_t)(T * n_in)), *d1 = malloc(sizeof(float) * (size_t)(T * n_in));
    char *wq = malloc((size_t)(n_out * rb));
    for (int64_t i = 0; i < n_out * n_in; i++) w[i] = (float)rand() / RAND_MAX - 0.5f;
    for (int64_t t = 0; t < T; t++) { /* a softmax gradient: small probabilities, one target at p - 1 */
        float *r = dy + t * n_out;
        double s = 0.0;
        for (int64_t i = 0; i < n_out; i++) s += r[i] = expf(4.0f * (float)rand() / RAND_MAX);
        for (int64_t i = 0; i < n_out; i++) r[i] = (float)(r[i] / s);
        r[rand() % n_out] -= 1.0f;
    }
    ckls_quantize_rows(CKLS_TYPE_Q8_0, w, wq, n_out, n_in, NULL);
    block_i16x8 *wt = ckls_i16_weight_t(CKLS_TYPE_Q8_0, wq, n_out, n_in);
    void *scratch = ckls_aligned_alloc((size_t)ckls_matmul_dx_i16_scratch(nt, n_out));
    double b16 = 1e9, b32 = 1e9;
    for (int r = 0; r < R; r++) {
        double t0 = now();
        ckls_matmul_dx_i16(pool, wt, n_out, n_in, dy, T, d1, 0, scratch, NULL);
        double t1 = now();
        ckls_matmul_dx(pool, CKLS_TYPE_Q8_0, wq, n_out, n_in, dy, T, d0, 0, NULL);
        double t2 = now();
        b16 = t1 - t0 < b16 ? t1 - t0 : b16;
        b32 = t2 - t1 < b32 ? t2 - t1 : b32;
    }
    double emax = 0.0, ymax = 0.0;
    for (int64_t i = 0; i < T * n_in; i++) {
        emax = fmax(emax, fabs((double)d1[i] - d0[i]));
        ymax = fmax(ymax, fabs((double)d0[i]));
    }
    const double mac = (double)T * n_out * n_in;
    printf("%s T %lld %lld x %lld, %d threads: int16 %.2f ms (%.1f MAC/ns), f32 %.2f ms (%.1f MAC/ns), x%.2f; "
           "max error %.2e of the largest output\n", ckls_isa_name(ckls_isa_active()), (long long)T, (long long)n_out,
           (long long)n_in, nt, b16 * 1e3, mac / b16 * 1e-9, b32 * 1e3, mac / b32 * 1e-9, b32 / b16, emax / ymax);
    return 0;
}
