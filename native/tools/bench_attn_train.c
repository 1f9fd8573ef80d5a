/* bench_attn_train.c — the training attention (ckls_attention_fwd, ckls_attention_bwd) at one layer of a shape,
 * ms per call, best of R, on a pool of NT threads. Not a test and not built by build.py; build it as bench_gemm.c
 * is (its header), adding build.isa_defines(cc) to the flags, with "native/tools/bench_attn_train.c" and
 * "-o build/bench_attn_train", then:
 *   build/bench_attn_train 1024 8 8 64        (tokens, heads, kv heads, head dim; env NT=2 R=20 BF16=0 ISA=)
 * BF16=1: the integer mode's bf16 products, where the CPU has them. ISA=N pins kernel set N (the enum's value, as
 * CKLS_ISA pins one for Python: 1 = avx2), else the detected one. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "backward.h"
#include "bench_util.h"

static float *rnd(int64_t n) {
    float *x = ckls_aligned_alloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) x[i] = (float)rand() / RAND_MAX * 2.0f - 1.0f;
    return x;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: bench_attn_train T H HKV D\n");
        return 2;
    }
    const int64_t T = atoi(argv[1]), H = atoi(argv[2]), HKV = atoi(argv[3]), D = atoi(argv[4]);
    const int nt = env("NT", 2), R = env("R", 20), bf16 = env("BF16", 0);
    if (pin_isa_from_env()) return 2;
    ckls_pool *pool = ckls_pool_create(nt);
    float *q = rnd(T * H * D), *k = rnd(T * HKV * D), *v = rnd(T * HKV * D), *dout = rnd(T * H * D);
    float *o = rnd(T * H * D), *lse = rnd(T * H), *dq = rnd(T * H * D), *dk = rnd(T * HKV * D), *dv = rnd(T * HKV * D);
    float *ws = ckls_aligned_alloc(sizeof(float) * (size_t)ckls_attention_backward_scratch(nt, T, H, HKV, D));
    /* causal multiply-adds: forward 2 products, backward 5, over T(T+1)/2 pairs of d */
    const double pairs = (double)T * (T + 1) / 2 * H * D * 2;
    for (int round = 0; round < 3; round++) {
        double bf = 1e9, bb = 1e9;
        for (int r = 0; r < R; r++) {
            double t = now();
            ckls_attention_fwd(pool, q, k, v, o, lse, T, H, HKV, D, bf16, ws);
            double dt = now() - t;
            bf = dt < bf ? dt : bf;
            t = now();
            ckls_attention_bwd(pool, q, k, v, o, lse, dout, dq, dk, dv, T, H, HKV, D, bf16, ws);
            dt = now() - t;
            bb = dt < bb ? dt : bb;
        }
        printf("%s T %lld H %lld/%lld D %lld, %d threads: fwd %.2f ms (%.0f GFLOP/s), bwd %.2f ms (%.0f GFLOP/s)\n",
               ckls_isa_name(ckls_isa_active()), (long long)T, (long long)H, (long long)HKV, (long long)D, nt,
               bf * 1e3, 2 * pairs / bf / 1e9, bb * 1e3, 5 * pairs / bb / 1e9);
    }
    ckls_pool_free(pool);
    return 0;
}
