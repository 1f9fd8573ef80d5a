/* bench_gemm.c — one core's throughput of an ISA's 8-row (gemm_x8), 16-row (gemm_x16) or tile (gemm_tiles: every
 * pair of groups x all TT tokens in one call, TT a multiple of 16) kernel over repacked
 * groups, in MAC/ns (best of R passes). Not a test and not built by build.py; build it against the objects:
 *
 *   python - <<'PY'
 *   import sys, pathlib, subprocess; sys.path.insert(0, "native"); import build
 *   cc = build.default_cc(); objs = build.compile_objects(pathlib.Path("build/bench-obj"), cc)
 *   subprocess.run(cc + build.COMMON_FLAGS + [f"-I{build.SRC}", "native/tools/bench_gemm.c"] + objs
 *                  + ["-o", "build/bench_gemm", "-lm", "-lpthread"], check=True)
 *   PY
 *   build/bench_gemm ISA TYPE N [x16|tiles|a7]   e.g. build/bench_gemm 4 8 1024 x16   (ISA and TYPE: the enum values;
 *   a7: Q8_0 against the trainer's 7-bit activations, gemm_x8_a7)
 *
 * Environment: G groups of 8 rows (32: weights stay in L2; 2048 x N = 4096: tens of MB, streamed), TT tokens per
 * pass, NT tokens per call (the 8-row kernels take at most 4), R passes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "quant.h"
#include "bench_util.h"

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: bench_gemm ISA TYPE N [x16|tiles|a7]\n");
        return 2;
    }
    const int isa = atoi(argv[1]), type = atoi(argv[2]), tiles = argc > 4 && !strcmp(argv[4], "tiles");
    const int a7 = argc > 4 && !strcmp(argv[4], "a7"), x16 = argc > 4 && !tiles && !a7;
    const int64_t n = atoll(argv[3]);
    const int groups = env("G", 32) & ~1, tt = env("TT", 16), reps = env("R", 20);
    const int max_nt = x16 ? 8 : 4, want = env("NT", max_nt);
    const int nt = want < 1 ? 1 : want > max_nt ? max_nt : want;
    const ckls_isa_kernels *k = ckls_isa_table(isa);
    if (!k || !k->gemm_x8[type] || (x16 && !k->gemm_x16[type]) || (tiles && (!k->gemm_tiles[type] || tt % 16)) ||
        (a7 && (!k->gemm_x8_a7 || type != CKLS_TYPE_Q8_0))) {
        fprintf(stderr, "no such kernel for ISA %d type %d\n", isa, type);
        return 1;
    }
    const int vt = ckls_type_vec_dot_type(type);
    const int64_t rb = ckls_row_bytes(type, n), xb = ckls_row_bytes(vt, n), pb = ckls_packed_bytes(type, 8 * groups, n);
    if (rb < 0 || pb <= 0) {
        fprintf(stderr, "N must be a multiple of the block size\n");
        return 2;
    }
    char *w = malloc((size_t)(rb * 8 * groups)), *xq = malloc((size_t)(xb * tt));
    float *f = malloc((size_t)n * sizeof(float)), *s = malloc(sizeof(float) * (size_t)(8 * groups > 16 ? 8 * groups : 16) * (size_t)tt);
    int16_t *aux = malloc(sizeof(int16_t) * (size_t)(tt * (n / 32)));
    char *p = ckls_aligned_alloc((size_t)pb);
    for (int r = 0; r < 8 * groups; r++) {
        for (int64_t i = 0; i < n; i++) f[i] = rand() / (float)RAND_MAX - 0.5f;
        ckls_type_get(type)->from_float_ref(f, w + r * rb, n);
    }
    ckls_repack_groups(type, w, n, 0, groups, p);
    for (int t = 0; t < tt; t++) {
        for (int64_t i = 0; i < n; i++) f[i] = rand() / (float)RAND_MAX - 0.5f;
        if (a7) ckls_quantize_q8_0_a7_ref(f, xq + t * xb, n, NULL, NULL);
        else ckls_isa_table(CKLS_ISA_SCALAR)->quantize_act[vt](f, xq + t * xb, n);
    }
    if (vt == CKLS_TYPE_Q8_0) ckls_q8_0_block_sums(xq, xb, n, tt, aux);
    int32_t *off = malloc(sizeof(int32_t) * (size_t)(tt * (n / 32)));
    float *xd7 = malloc(sizeof(float) * (size_t)(tt * (n / 32)));
    if (a7) ckls_q8_0_a7_terms(xq, xb, n, tt, off, xd7);
    float *xd = malloc(sizeof(float) * (size_t)(tt * (n / 32)));
    int8_t *xt = malloc((size_t)(tt * n));
    if (tiles) ckls_q8_0_tiles_pack(xq, xb, n, tt, xt, xd);
    const int64_t gb = pb / groups;
    double best = 1e30;
    for (int rep = 0; rep < reps; rep++) {
        const double t0 = now();
        if (tiles) k->gemm_tiles[type](n, s, 8 * groups, w, rb, groups / 2, xt, xd, tt);
        for (int g = 0; !tiles && g < groups; g += 1 + x16)
            for (int t = 0; t < tt; t += nt) {
                const int c = tt - t < nt ? tt - t : nt;
                const int16_t *a = vt == CKLS_TYPE_Q8_0 ? aux + t * (n / 32) : NULL;
                if (x16) k->gemm_x16[type](n, s + 16 * t, 16, p + g * gb, gb, xq + t * xb, xb, a, c);
                else if (a7) k->gemm_x8_a7(n, s + 8 * t, 8, p + g * gb, xq + t * xb, xb, off + t * (n / 32), xd7 + t * (n / 32), c);
                else k->gemm_x8[type](n, s + 8 * t, 8, p + g * gb, xq + t * xb, xb, a, c);
            }
        const double dt = now() - t0;
        best = dt < best ? dt : best;
    }
    printf("%s %s %s n=%lld groups=%d tokens=%d per call %d: %.1f MAC/ns\n", ckls_isa_name(isa),
           ckls_type_get(type)->name, tiles ? "gemm_tiles" : x16 ? "gemm_x16" : a7 ? "gemm_x8_a7" : "gemm_x8", (long long)n, groups, tt, nt,
           8.0 * groups * tt * n / best / 1e9);
    return 0;
}
