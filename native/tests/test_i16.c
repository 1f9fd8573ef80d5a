/* test_i16.c — the int16 products of the integer mode's vocabulary dX (gemm_i16.c), on fresh random data each run
 * (seed from the clock unless given; printed), odd sizes and tails, every buffer malloc'ed at its exact size:
 *   - each ISA's row quantizer vs ckls_quantize_i16_ref, bit for bit, special values included;
 *   - each ISA's product kernel vs ckls_gemm_i16x8_ref, bit for bit, on values up to the +-8191 that bound the
 *     int32 sums, every token count, accumulating or not;
 *   - the threaded driver (ckls_matmul_dx_i16 on ckls_i16_weight_t) vs dY.W in double, within the quantization's
 *     error bound per output (both operands' rounding, block by block); accumulate and cancel.
 * Last line: "N passed, N failed"; exit status non-zero on failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "backward.h"
#include "quant.h"
#include "test_util.h"

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) { printf("out of memory\n"); exit(2); }
    return p;
}

static void test_quantize(int isa, const ckls_isa_kernels *k) {
    static const int ns[] = {1, 7, 31, 32, 33, 64, 100, 1027};
    for (int ni = 0; ni < 8; ni++)
        for (int fam = 0; fam < 3; fam++) {
            const int64_t n = ns[ni], nb = (n + 31) / 32;
            float *x = xmalloc(sizeof(float) * (size_t)n), *d0 = xmalloc(sizeof(float) * (size_t)nb);
            float *d1 = xmalloc(sizeof(float) * (size_t)nb);
            int16_t *q0 = xmalloc(sizeof(int16_t) * (size_t)(nb * 32)), *q1 = xmalloc(sizeof(int16_t) * (size_t)(nb * 32));
            for (int64_t i = 0; i < n; i++) /* 0: wide magnitudes; 1: a softmax gradient's; 2: special values */
                x[i] = fam == 0 ? rnd_sym() * ldexpf(1.0f, rnd_int(-30, 30))
                     : fam == 1 ? (i % 17 == 3 ? rnd_unit() - 1.0f : rnd_unit() * 1e-4f)
                                : (float[]){0.0f, -0.0f, NAN, INFINITY, -INFINITY, 1e-40f, 0.5f, -3.0f}[rnd_int(0, 7)];
            ckls_quantize_i16_ref(x, q0, n, d0);
            k->quantize_i16(x, q1, n, d1);
            CHECK(memcmp(q0, q1, sizeof(int16_t) * (size_t)(nb * 32)) == 0 &&
                      memcmp(d0, d1, sizeof(float) * (size_t)nb) == 0,
                  "%s quantize_i16 n=%lld family %d: differs from the reference", ckls_isa_name(isa), (long long)n, fam);
            int in_range = 1;
            for (int64_t i = 0; i < nb * 32; i++) in_range &= abs(q1[i]) <= CKLS_I16_MAX && (i < n || q1[i] == 0);
            CHECK(in_range, "%s quantize_i16 n=%lld family %d: a quant past +-%d or a nonzero pad", ckls_isa_name(isa),
                  (long long)n, fam, CKLS_I16_MAX);
            free(x), free(d0), free(d1), free(q0), free(q1);
        }
}

static void test_kernel(int isa, const ckls_isa_kernels *k) {
    for (int rep = 0; rep < 12; rep++) {
        const int64_t nb = rnd_int(1, 19), lda = nb * 32 + rnd_int(0, 3) * 2, ws = nb + rnd_int(0, 2), ldc = 16 + rnd_int(0, 5);
        const int nt = rnd_int(1, 4), acc = rnd_int(0, 1), extreme = rep % 3 == 0;
        int16_t *a = xmalloc(sizeof(int16_t) * (size_t)(nt * lda));
        float *sa = xmalloc(sizeof(float) * (size_t)(nt * nb));
        block_i16x8 *w = ckls_aligned_alloc(sizeof(block_i16x8) * (size_t)(ws + nb));
        float *c0 = xmalloc(sizeof(float) * (size_t)(nt * ldc)), *c1 = xmalloc(sizeof(float) * (size_t)(nt * ldc));
        /* extreme: every value at +-8191, the sums' largest magnitude (32 * 8191^2 < 2^31) */
        for (int64_t i = 0; i < nt * lda; i++)
            a[i] = (int16_t)(extreme ? (rnd() & 1 ? CKLS_I16_MAX : -CKLS_I16_MAX) : rnd_int(-CKLS_I16_MAX, CKLS_I16_MAX));
        for (int64_t i = 0; i < nt * nb; i++) sa[i] = rnd_unit() * 1e-3f;
        for (int64_t b = 0; b < ws + nb; b++) {
            for (int p = 0; p < 16; p++)
                for (int e = 0; e < 16; e++)
                    w[b].q[p][e] = (int16_t)(extreme ? CKLS_I16_MAX * (a[0] > 0 ? 1 : -1)
                                                     : rnd_int(-CKLS_I16_MAX, CKLS_I16_MAX));
            for (int c = 0; c < 8; c++) w[b].d[c] = rnd_unit() * 1e-3f;
        }
        for (int64_t i = 0; i < nt * ldc; i++) c0[i] = c1[i] = rnd_sym();
        ckls_gemm_i16x8_ref(nb, a, lda, sa, nb, w, ws, c0, ldc, nt, acc);
        k->gemm_i16x8(nb, a, lda, sa, nb, w, ws, c1, ldc, nt, acc);
        CHECK(memcmp(c0, c1, sizeof(float) * (size_t)(nt * ldc)) == 0,
              "%s gemm_i16x8 nb=%lld nt=%d accumulate %d%s: differs from the reference", ckls_isa_name(isa),
              (long long)nb, nt, acc, extreme ? " (extreme values)" : "");
        free(a), free(sa), free(c0), free(c1);
        ckls_aligned_free(w);
    }
}

/* dx = dy.W (plus dx0 when accumulating) against double sums, each output within its bound: per 32-row block, 32
 * * (dy's block max) * (W's block max in the column) * 2 / 8191 (both roundings, half a step each), plus f32 sums'
 * rounding */
static void test_driver(ckls_pool *pool) {
    for (int rep = 0; rep < 3; rep++) {
        const int64_t n_tok = rnd_int(1, 300), n_out = rnd_int(16, 700), n_in = 16 * rnd_int(1, 6) * 2;
        const int acc = rnd_int(0, 1);
        const int64_t rb = ckls_row_bytes(CKLS_TYPE_Q8_0, n_in), nb = (n_out + 31) / 32;
        float *wf = xmalloc(sizeof(float) * (size_t)(n_out * n_in)), *dy = xmalloc(sizeof(float) * (size_t)(n_tok * n_out));
        float *dx = xmalloc(sizeof(float) * (size_t)(n_tok * n_in)), *dx0 = xmalloc(sizeof(float) * (size_t)(n_tok * n_in));
        char *wq = xmalloc((size_t)(n_out * rb));
        for (int64_t i = 0; i < n_out * n_in; i++) wf[i] = rnd_sym();
        ckls_quantize_rows(CKLS_TYPE_Q8_0, wf, wq, n_out, n_in, NULL);
        for (int64_t r = 0; r < n_out; r++) ckls_dequantize_row(CKLS_TYPE_Q8_0, wq + r * rb, wf + r * n_in, n_in);
        for (int64_t t = 0; t < n_tok; t++) /* a softmax gradient: small probabilities, one target at p - 1 */
            for (int64_t i = 0; i < n_out; i++)
                dy[t * n_out + i] = rnd_unit() * 2.0f / (float)n_out - (i == t % n_out ? 1.0f : 0.0f);
        for (int64_t i = 0; i < n_tok * n_in; i++) dx[i] = dx0[i] = rnd_sym();
        block_i16x8 *wt = ckls_i16_weight_t(CKLS_TYPE_Q8_0, wq, n_out, n_in);
        void *scratch = ckls_aligned_alloc((size_t)ckls_matmul_dx_i16_scratch(ckls_pool_threads(pool), n_out));
        CHECK(wt && scratch, "i16 weight copy / scratch");
        CHECK(ckls_matmul_dx_i16(pool, wt, n_out, n_in, dy, n_tok, dx, acc, scratch, NULL) == 0, "dx_i16 returned");
        double worst = 0.0;
        for (int64_t t = 0; t < n_tok; t++)
            for (int64_t j = 0; j < n_in; j++) {
                double want = acc ? dx0[t * n_in + j] : 0.0, bound = 0.0, mag = 0.0;
                for (int64_t b = 0; b < nb; b++) {
                    double ma = 0.0, mw = 0.0;
                    for (int64_t v = b * 32; v < n_out && v < b * 32 + 32; v++) {
                        const double p = (double)dy[t * n_out + v] * wf[v * n_in + j];
                        want += p, mag += fabs(p);
                        ma = fmax(ma, fabs(dy[t * n_out + v])), mw = fmax(mw, fabs(wf[v * n_in + j]));
                    }
                    bound += 32.0 * ma * mw * 2.0 / CKLS_I16_MAX;
                }
                bound += (double)(nb + 2) * ldexp(mag + fabs(want), -23);
                worst = fmax(worst, fabs(dx[t * n_in + j] - want) / bound);
            }
        CHECK(worst <= 1.0, "dx_i16 %lld tokens, %lld x %lld, accumulate %d, %d threads: error %.2f of its bound",
              (long long)n_tok, (long long)n_out, (long long)n_in, acc, ckls_pool_threads(pool), worst);
        CHECK(ckls_matmul_dx_i16(pool, wt, n_out, n_in - 8, dy, n_tok, dx, 0, scratch, NULL) == CKLS_EINVAL,
              "dx_i16 on a column count the kernels cannot take: an error, not a write past the rows");
        /* a raised flag: nothing done, the call says so */
        volatile int32_t flag = 1;
        CHECK(ckls_matmul_dx_i16(pool, wt, n_out, n_in, dy, n_tok, dx, 0, scratch, &flag) == 1, "dx_i16 cancel");
        free(wf), free(dy), free(dx), free(dx0), free(wq);
        ckls_aligned_free(wt);
        ckls_aligned_free(scratch);
    }
}

int main(int argc, char **argv) {
    test_seed(argc, argv, "test_i16");
    int any = 0;
    for (int isa = 1; isa < CKLS_ISA_COUNT; isa++) {
        const ckls_isa_kernels *k = ckls_isa_table(isa);
        if (!k || !k->gemm_i16x8) continue;
        any = 1;
        for (int rep = 0; rep < 3; rep++) {
            test_quantize(isa, k);
            test_kernel(isa, k);
        }
    }
    for (int nth = 1; nth <= 3 && any; nth++) {
        ckls_pool *pool = ckls_pool_create(nth);
        for (int isa = 0; isa < CKLS_ISA_COUNT; isa++) {
            if (!ckls_isa_available(isa) || ckls_set_isa(isa) || !ckls_active_kernels()->gemm_i16x8) continue;
            test_driver(pool);
        }
        ckls_set_isa(ckls_isa_detected());
        ckls_pool_free(pool);
    }
    if (!any) CHECK(1, "no ISA with int16 kernels in this build (nothing to compare)");
    return test_report();
}
