/* bench_tile.c — one core's throughput of the f32 training tiles (ckls_gemm_tile_avx2 / _avx512), GFLOP/s, best of
 * 200 calls, three rounds each, for the shape M N K given. Not a test and not built by build.py; build it as
 * bench_gemm.c is (its header), adding build.isa_defines(cc) to the flags, with "native/tools/bench_tile.c" and
 * "-o build/bench_tile", then:
 *   build/bench_tile 64 64 256
 * With AVX512-BF16 also the bf16 tile (gemm_tile_bf16_avx512bf16.c) on the same shape.
 * dispatch.c picks the AVX2 tile for the AVX-512 tables where this shows it faster (AMD family 19h). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "internal.h"
#include "bench_util.h"

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: bench_tile M N K\n");
        return 2;
    }
    const int64_t m = atoi(argv[1]), n = atoi(argv[2]), k = atoi(argv[3]);
    float *A = malloc(sizeof(float) * (size_t)(m * k)), *B = malloc(sizeof(float) * (size_t)(k * n));
    float *C = malloc(sizeof(float) * (size_t)(m * n));
    for (int64_t i = 0; i < m * k; i++) A[i] = (float)rand() / RAND_MAX;
    for (int64_t i = 0; i < k * n; i++) B[i] = (float)rand() / RAND_MAX;
    struct { const char *name; int isa; ckls_gemm_tile_fn fn; } tiles[] = {
#if defined(CKLS_HAVE_AVX2)
        {"avx2", CKLS_ISA_AVX2, ckls_gemm_tile_avx2},
#endif
#if defined(CKLS_HAVE_AVX512)
        {"avx512", CKLS_ISA_AVX512, ckls_gemm_tile_avx512},
#endif
    };
    for (int round = 0; round < 3; round++)
        for (size_t v = 0; v < sizeof tiles / sizeof tiles[0]; v++) {
            if (!ckls_isa_available(tiles[v].isa)) continue;
            double best = 1e9;
            for (int r = 0; r < 200; r++) {
                const double t = now();
                tiles[v].fn(m, n, k, 1.0f, A, k, 1, B, n, 0, C, n);
                const double dt = now() - t;
                best = dt < best ? dt : best;
            }
            printf("%s %lldx%lldx%lld: %.1f GFLOP/s\n", tiles[v].name, (long long)m, (long long)n, (long long)k,
                   2.0 * (double)(m * n * k) / best / 1e9);
        }
#if defined(CKLS_HAVE_AVX512BF16)
    if (ckls_isa_available(CKLS_ISA_AVX512) && ckls_isa_table(CKLS_ISA_AVX512)->gemm_tile_bf16) {
        /* the bf16 tile on the same shape: A's rows and B's columns as bf16 pairs along k */
        const int64_t kp = (k + 1) / 2;
        uint32_t *Ab = malloc(sizeof(uint32_t) * (size_t)(m * kp)), *Bb = malloc(sizeof(uint32_t) * (size_t)(kp * n));
        ckls_bf16_rows_ref(A, m, k, k, Ab, kp);
        ckls_bf16_pairs_ref(B, k, n, n, Bb, n);
        for (int round = 0; round < 3; round++) {
            double best = 1e9;
            for (int r = 0; r < 200; r++) {
                const double t = now();
                ckls_gemm_tile_bf16_avx512bf16(m, n, kp, 1.0f, Ab, kp, 1, Bb, n, 0, C, n);
                const double dt = now() - t;
                best = dt < best ? dt : best;
            }
            printf("bf16 %lldx%lldx%lld: %.1f GFLOP/s\n", (long long)m, (long long)n, (long long)k,
                   2.0 * (double)(m * n * k) / best / 1e9);
        }
        free(Ab), free(Bb);
    }
#endif
    free(A), free(B), free(C);
    return 0;
}
