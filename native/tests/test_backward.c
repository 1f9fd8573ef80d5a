/* test_backward.c — the training kernels of every ISA against their scalar references, on fresh random data
 * each run (seed from the clock unless given; printed), odd sizes and tails, every buffer malloc'ed at its exact
 * size so ASan sees any read past it:
 *   - GEMM tiles (A plain and transposed, accumulate or overwrite, alpha) vs ckls_gemm_tile_ref, and the row dots
 *     (A.W^T) vs ckls_gemm_nt_ref;
 *   - the exp kernel vs ckls_exp_shift_ref and libm's exp; the transpose kernel vs ckls_transpose_ref; the
 *     attention row kernel (softmax and its log-sum-exp) vs ckls_softmax_ref;
 *   - the bf16 conversions (bit for bit) and tile vs their references, where the CPU has AVX512-BF16;
 *   - the threaded drivers (ckls_gemm_f32, ckls_matmul_backward per weight type, ckls_attention_backward — by
 *     blocks with the GEMM tile — on the scalar and the detected ISA) vs a plain single-threaded composition of
 *     the scalar references (ckls_attn_bwd_ref works a row at a time);
 *   - bad arguments come back as status codes.
 * Last line: "N passed, N failed"; exit status non-zero on failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "backward.h"
#include "quant.h"
#include "test_util.h"



static float *randv(int64_t n) {
    float *p = malloc(sizeof(float) * (size_t)(n ? n : 1));
    if (!p) { printf("out of memory\n"); exit(2); }
    for (int64_t i = 0; i < n; i++) p[i] = rnd_sym();
    return p;
}
static float *copyv(const float *x, int64_t n) {
    float *p = malloc(sizeof(float) * (size_t)(n ? n : 1));
    if (!p) { printf("out of memory\n"); exit(2); }
    memcpy(p, x, sizeof(float) * (size_t)n);
    return p;
}

static void test_gemm_tiles(int isa, const ckls_isa_kernels *k) {
    static const int ms[] = {1, 3, 4, 5, 8, 13, 64}, ns[] = {1, 7, 8, 15, 16, 17, 33, 64}, ks[] = {0, 1, 5, 32, 77};
    for (int mi = 0; mi < 7; mi++)
        for (int ni = 0; ni < 8; ni++) {
            const int64_t m = ms[mi], n = ns[ni], kk = ks[rnd_int(0, 4)];
            const int trans = rnd_int(0, 1), acc = rnd_int(0, 1);
            const int64_t ldb = n + rnd_int(0, 3), ldc = n + rnd_int(0, 3);
            const int64_t a_si = trans ? 1 : kk, a_sk = trans ? m : 1;
            float *A = randv(m * kk), *B = randv(kk * ldb), *C0 = randv(m * ldc);
            float *C1 = copyv(C0, m * ldc);
            const float alpha = rnd_sym() * 2.0f;
            float *aA = abs_copy(A, m * kk), *aB = abs_copy(B, kk * ldb), *mag = calloc((size_t)(m * ldc), 4);
            ckls_gemm_tile_ref(m, n, kk, fabsf(alpha), aA, a_si, a_sk, aB, ldb, 0, mag, ldc);
            ckls_gemm_tile_ref(m, n, kk, alpha, A, a_si, a_sk, B, ldb, acc, C0, ldc);
            k->gemm_tile(m, n, kk, alpha, A, a_si, a_sk, B, ldb, acc, C1, ldc);
            /* f32 sums in another order: each within k + 2 roundings of its terms (alpha's and acc's included) */
            const double e = bound_err(C1, C0, mag, (double)(kk + 2) * ldexp(1.0, -23), m * ldc);
            CHECK(e <= 1.0, "%s gemm tile m=%lld n=%lld k=%lld trans=%d acc=%d: error %g of the bound",
                  ckls_isa_name(isa), (long long)m, (long long)n, (long long)kk, trans, acc, e);
            free(A), free(B), free(C0), free(C1), free(aA), free(aB), free(mag);
        }
}

/* The row dots (A.W^T) vs their reference: every block shape and tail (m, n around the 2 x 4 blocks, k around 8),
 * padded row strides, accumulate or overwrite. */
static void test_gemm_nt(int isa, const ckls_isa_kernels *k) {
    static const int ms[] = {1, 2, 3, 5, 32, 33}, ns[] = {1, 3, 4, 5, 8, 9, 16}, ks[] = {0, 1, 7, 8, 9, 64, 203};
    for (int mi = 0; mi < 6; mi++)
        for (int ni = 0; ni < 7; ni++) {
            const int64_t m = ms[mi], n = ns[ni], kk = ks[rnd_int(0, 6)], acc = rnd_int(0, 1);
            const int64_t lda = kk + rnd_int(0, 3), ldw = kk + rnd_int(0, 3), ldc = n + rnd_int(0, 3);
            float *A = randv(m * lda + 1), *W = randv(n * ldw + 1), *C0 = randv(m * ldc), *C1 = copyv(C0, m * ldc);
            const float alpha = rnd_sym() * 2.0f;
            float *aA = abs_copy(A, m * lda + 1), *aW = abs_copy(W, n * ldw + 1), *mag = calloc((size_t)(m * ldc), 4);
            ckls_gemm_nt_ref(m, n, kk, fabsf(alpha), aA, lda, aW, ldw, 0, mag, ldc);
            ckls_gemm_nt_ref(m, n, kk, alpha, A, lda, W, ldw, (int)acc, C0, ldc);
            k->gemm_nt(m, n, kk, alpha, A, lda, W, ldw, (int)acc, C1, ldc);
            const double e = bound_err(C1, C0, mag, (double)(kk + 2) * ldexp(1.0, -23), m * ldc);
            CHECK(e <= 1.0, "%s gemm_nt m=%lld n=%lld k=%lld acc=%d: error %g of the bound", ckls_isa_name(isa),
                  (long long)m, (long long)n, (long long)kk, (int)acc, e);
            free(A), free(W), free(C0), free(C1), free(aA), free(aW), free(mag);
        }
}

/* The bf16 kernels (where the CPU has them) vs their references: the conversions bit for bit on odd shapes with
 * zeros, denormals and huge values, writing nothing past their outputs; the tile on operands made by them, A plain
 * and transposed, accumulate or overwrite. */
static uint32_t *randu(int64_t n) {
    uint32_t *p = malloc(sizeof(uint32_t) * (size_t)(n ? n : 1));
    if (!p) { printf("out of memory\n"); exit(2); }
    for (int64_t i = 0; i < n; i++) p[i] = (uint32_t)rnd();
    return p;
}

static void test_bf16(int isa, const ckls_isa_kernels *k) {
    static const int dims[] = {1, 2, 3, 15, 16, 17, 31, 32, 33, 48, 65};
    for (int t = 0; t < 40; t++) {
        const int64_t rows = dims[rnd_int(0, 10)], cols = dims[rnd_int(0, 10)], ldx = cols + rnd_int(0, 3);
        float *x = randv(rows * ldx);
        for (int64_t i = 0; i < rows * ldx; i++) {
            const int kind = rnd_int(0, 15);
            x[i] = kind == 0 ? 0.0f : kind == 1 ? 1e-39f * rnd_sym() : kind == 2 ? 3e38f * rnd_sym() : x[i];
        }
        const int64_t ry = rows, ly = (cols + 1) / 2 + rnd_int(0, 2), py = (rows + 1) / 2, lp = cols + rnd_int(0, 2);
        uint32_t *y0 = randu(ry * ly), *y1 = malloc(sizeof(uint32_t) * (size_t)(ry * ly));
        memcpy(y1, y0, sizeof(uint32_t) * (size_t)(ry * ly));
        ckls_bf16_rows_ref(x, rows, cols, ldx, y0, ly);
        k->bf16_rows(x, rows, cols, ldx, y1, ly);
        CHECK(memcmp(y0, y1, sizeof(uint32_t) * (size_t)(ry * ly)) == 0, "%s bf16 rows %lldx%lld", ckls_isa_name(isa),
              (long long)rows, (long long)cols);
        uint32_t *z0 = randu(py * lp), *z1 = malloc(sizeof(uint32_t) * (size_t)(py * lp));
        memcpy(z1, z0, sizeof(uint32_t) * (size_t)(py * lp));
        ckls_bf16_pairs_ref(x, rows, cols, ldx, z0, lp);
        k->bf16_pairs(x, rows, cols, ldx, z1, lp);
        CHECK(memcmp(z0, z1, sizeof(uint32_t) * (size_t)(py * lp)) == 0, "%s bf16 pairs %lldx%lld",
              ckls_isa_name(isa), (long long)rows, (long long)cols);
        free(x), free(y0), free(y1), free(z0), free(z1);
    }
    static const int ms[] = {1, 3, 7, 8, 9, 16, 48}, ns[] = {1, 15, 16, 17, 31, 32, 33, 48, 64, 65};
    for (int mi = 0; mi < 7; mi++)
        for (int ni = 0; ni < 10; ni++) {
            /* k up to 140: the AMX tile's whole 16-pair steps and a rest */
            const int64_t m = ms[mi], n = ns[ni], kk = rnd_int(0, 3) ? rnd_int(1, 140) : 0, kp = (kk + 1) / 2;
            const int trans = rnd_int(0, 1), acc = rnd_int(0, 1);
            const int64_t ldb = n + rnd_int(0, 3), ldc = n + rnd_int(0, 3);
            /* A: m x k floats (k x m when transposed) -> pairs along k; B: k x n -> pairs down its columns */
            float *Af = randv(m * kk), *Bf = randv(kk * n), *C0 = randv(m * ldc);
            float *C1 = copyv(C0, m * ldc);
            uint32_t *A = randu(m * kp), *B = randu(kp * ldb);
            if (trans) ckls_bf16_pairs_ref(Af, kk, m, m, A, m); /* pair p of row i at A[i + p * m] */
            else ckls_bf16_rows_ref(Af, m, kk, kk, A, kp);
            ckls_bf16_pairs_ref(Bf, kk, n, n, B, ldb);
            const int64_t a_si = trans ? 1 : kp, a_sp = trans ? m : 1;
            const float alpha = rnd_sym() * 2.0f;
            ckls_gemm_tile_bf16_ref(m, n, kp, alpha, A, a_si, a_sp, B, ldb, acc, C0, ldc);
            k->gemm_tile_bf16(m, n, kp, alpha, A, a_si, a_sp, B, ldb, acc, C1, ldc);
            const double e = rel_err(C1, C0, m * ldc);
            CHECK(e < 1e-5, "%s bf16 tile m=%lld n=%lld k=%lld trans=%d acc=%d: error %g", ckls_isa_name(isa),
                  (long long)m, (long long)n, (long long)kk, trans, acc, e);
            free(Af), free(Bf), free(C0), free(C1), free(A), free(B);
        }
}

/* The exp kernel vs its reference and vs libm, on odd lengths, in place and not, over the whole range it sees
 * (softmax arguments are <= 0) plus the clamps and NaN. */
static void test_exp(int isa, const ckls_isa_kernels *k) {
    static const int ns[] = {1, 7, 8, 15, 16, 17, 33, 100, 1027};
    for (int ni = 0; ni < 9; ni++) {
        const int64_t n = ns[ni];
        float *x = randv(n), *y0 = randv(n), *y1 = randv(n);
        for (int64_t i = 0; i < n; i++) x[i] = x[i] * 60.0f - 40.0f; /* [-100, 20] */
        if (n > 5) x[0] = -INFINITY, x[1] = 200.0f, x[2] = NAN, x[3] = 0.0f, x[4] = -87.3f;
        const float shift = rnd_sym();
        const double s0 = ckls_exp_shift_ref(y0, x, n, shift);
        float *x1 = copyv(x, n);
        const double s1 = k->exp_shift(x1, x1, n, shift); /* in place */
        double e = 0.0, e_libm = 0.0;
        for (int64_t i = 0; i < n; i++) {
            const double want = exp((double)(x[i] - shift)); /* of the same rounded argument */
            e = fmax(e, fabs((double)x1[i] - y0[i]) / fmax(y0[i], 1e-30));
            if (x[i] - shift >= -80.0f && x[i] - shift <= CKLS_EXP_HI) /* lower: results near denormal */
                e_libm = fmax(e_libm, fabs(y0[i] - want) / want);
            else if (x[i] - shift < CKLS_EXP_LO || isnan(x[i]))
                CHECK(y0[i] == 0.0f && x1[i] == 0.0f, "%s exp of %g is %g / %g, not 0", ckls_isa_name(isa),
                      x[i] - shift, y0[i], x1[i]);
            else
                CHECK(isfinite(y0[i]) && isfinite(x1[i]), "%s exp clamp", ckls_isa_name(isa));
        }
        CHECK(e < 4e-7 && e_libm < 4e-7 && fabs(s1 - s0) <= 1e-6 * s0, "%s exp n=%lld: vs ref %g, vs libm %g, sums "
              "%g %g", ckls_isa_name(isa), (long long)n, e, e_libm, s0, s1);
        (void)y1;
        free(x), free(y0), free(y1), free(x1);
    }
}

/* The transpose kernel reproduces the reference exactly, on odd shapes and strides. */
static void test_transpose(int isa, const ckls_isa_kernels *k) {
    for (int rep = 0; rep < 8; rep++) {
        const int64_t rows = rnd_int(1, 70), cols = rnd_int(1, 70), lds = cols + rnd_int(0, 5), ldd = rows + rnd_int(0, 5);
        float *src = randv(rows * lds), *d0 = randv(cols * ldd);
        float *d1 = copyv(d0, cols * ldd);
        ckls_transpose_ref(src, rows, cols, lds, d0, ldd);
        k->transpose(src, rows, cols, lds, d1, ldd);
        CHECK(memcmp(d0, d1, sizeof(float) * (size_t)(cols * ldd)) == 0, "%s transpose %lldx%lld (lds %lld, ldd %lld)",
              ckls_isa_name(isa), (long long)rows, (long long)cols, (long long)lds, (long long)ldd);
        free(src), free(d0), free(d1);
    }
}

/* The softmax row kernel vs its reference on odd lengths, scores as attention makes them (scaled dots, one
 * dominant sometimes); its log-sum-exp against one computed in double. */
static void test_softmax(int isa, const ckls_isa_kernels *k) {
    static const int ns[] = {1, 2, 7, 8, 9, 16, 17, 31, 100, 1023};
    for (int ni = 0; ni < 10; ni++) {
        const int64_t n = ns[ni];
        float *p0 = randv(n);
        for (int64_t i = 0; i < n; i++) p0[i] *= 8.0f;
        if (n > 3 && rnd_int(0, 1)) p0[rnd_int(0, (int)n - 1)] = 30.0f;
        float *q0 = copyv(p0, n), *q1 = copyv(p0, n);
        const float l0 = ckls_softmax_ref(q0, n), l1 = k->softmax(q1, n);
        double mx = -INFINITY, sum = 0.0; /* log-sum-exp, in double from the scores */
        for (int64_t i = 0; i < n; i++) mx = p0[i] > mx ? p0[i] : mx;
        for (int64_t i = 0; i < n; i++) sum += exp(p0[i] - mx);
        const double lse = mx + log(sum);
        CHECK(fabs(l0 - lse) <= 1e-6 * fmax(1.0, fabs(lse)) && fabs(l1 - lse) <= 1e-6 * fmax(1.0, fabs(lse)),
              "%s softmax n=%lld: log-sum-exp %g, reference %g, in double %g", ckls_isa_name(isa), (long long)n, l1,
              l0, lse);
        const double ep = rel_err(q1, q0, n);
        CHECK(ep < 1e-6, "%s softmax n=%lld: p %g", ckls_isa_name(isa), (long long)n, ep);
        free(p0), free(q0), free(q1);
    }
}

/* Threaded drivers on the active ISA vs single-threaded scalar compositions. */
static void test_drivers(ckls_pool *pool) {
    const int64_t M = rnd_int(1, 150), N = rnd_int(1, 200), K = rnd_int(0, 300);
    float *A = randv(M * K), *B = randv(K * N), *C0 = randv(M * N);
    float *C1 = copyv(C0, M * N);
    ckls_gemm_tile_ref(M, N, K, 0.5f, A, 1, M, B, N, 1, C0, N); /* A read transposed: A is K x M */
    CHECK(ckls_gemm_f32(pool, M, N, K, 0.5f, A, 1, M, B, N, 1.0f, C1, N) == 0, "gemm_f32 status");
    CHECK(rel_err(C1, C0, M * N) < 1e-5, "gemm_f32 %lldx%lldx%lld: error %g", (long long)M, (long long)N,
          (long long)K, rel_err(C1, C0, M * N));
    free(A), free(B), free(C0), free(C1);

    /* 32-blocks: 1 to 11 of them, or 16 (512 columns: dX's widest items) */
    static const int types[] = {CKLS_TYPE_F32, CKLS_TYPE_F16, CKLS_TYPE_BF16, CKLS_TYPE_Q8_0, CKLS_TYPE_Q4_0,
                                CKLS_TYPE_Q4_K, CKLS_TYPE_Q6_K};
    for (int ti = 0; ti < 7; ti++) {
        const int type = types[ti];
        const int64_t blk = ckls_type_block_size(type);
        const int64_t n_in = blk * (blk > 32 ? rnd_int(1, 3) : rnd_int(0, 3) ? rnd_int(1, 11) : 16);
        const int64_t n_out = rnd_int(1, 140), n_tok = rnd_int(1, 150), rb = ckls_row_bytes(type, n_in);
        float *w = randv(n_out * n_in), *deq = randv(n_out * n_in), *dy = randv(n_tok * n_out);
        void *wq = malloc((size_t)(rb * n_out));
        CHECK(ckls_quantize_rows(type, w, wq, n_out, n_in, NULL) == 0, "quantize %d", type);
        for (int64_t r = 0; r < n_out; r++) ckls_dequantize_row(type, (char *)wq + r * rb, deq + r * n_in, n_in);
        float *dx0 = randv(n_tok * n_in), *dx1 = copyv(dx0, n_tok * n_in);
        ckls_gemm_tile_ref(n_tok, n_in, n_out, 1.0f, dy, n_out, 1, deq, n_in, 1, dx0, n_in);
        CHECK(ckls_matmul_backward(pool, type, wq, n_out, n_in, dy, n_tok, dx1, 1) == 0, "matmul_backward status");
        CHECK(rel_err(dx1, dx0, n_tok * n_in) < 1e-5, "matmul_backward %s %lldx%lld, %lld tokens: error %g",
              ckls_type_get(type)->name, (long long)n_out, (long long)n_in, (long long)n_tok,
              rel_err(dx1, dx0, n_tok * n_in));
        CHECK(ckls_matmul_backward(pool, type, wq, n_out, n_in + (blk > 1), dy, n_tok, dx1, 1) == (blk > 1 ? CKLS_EINVAL : 0),
              "matmul_backward accepts a partial block");
        if (ckls_active_kernels()->gemm_tile_bf16) { /* the bf16 dX: within bf16's rounding of the f32 one */
            uint32_t *w2 = ckls_bf16_weight_pairs(type, wq, n_out, n_in);
            uint32_t *sc = malloc(sizeof(uint32_t) * (size_t)ckls_matmul_dx_bf16_scratch(ckls_pool_threads(pool), n_out));
            float *dx2 = randv(n_tok * n_in), *dx3 = copyv(dx2, n_tok * n_in);
            const int acc = rnd_int(0, 1);
            CHECK(w2 && ckls_matmul_dx_bf16(pool, w2, n_out, n_in, dy, n_tok, dx2, acc, sc, NULL) == 0, "dx bf16 status");
            ckls_gemm_tile_ref(n_tok, n_in, n_out, 1.0f, dy, n_out, 1, deq, n_in, acc, dx3, n_in);
            /* each product carries bf16's rounding of both operands (8 significant bits, round to nearest: at most
             * 2^-8 each, so 2^-7 of |dy w|), the f32 sums their own; a truncating conversion would double it */
            float *ady = abs_copy(dy, n_tok * n_out), *adeq = abs_copy(deq, n_out * n_in);
            float *mag = calloc((size_t)(n_tok * n_in), 4);
            ckls_gemm_tile_ref(n_tok, n_in, n_out, 1.0f, ady, n_out, 1, adeq, n_in, 0, mag, n_in);
            const double tol = ldexp(1.0, -7) + ldexp(1.0, -16) + (double)(n_out + 2) * ldexp(1.0, -23);
            const double e = bound_err(dx2, dx3, mag, tol, n_tok * n_in);
            CHECK(e <= 1.0, "matmul_dx_bf16 %s %lldx%lld, %lld tokens, acc %d: error %g of bf16's bound",
                  ckls_type_get(type)->name, (long long)n_out, (long long)n_in, (long long)n_tok, acc, e);
            free(ady), free(adeq), free(mag);
            ckls_aligned_free(w2), free(sc), free(dx2), free(dx3);
        }
        free(w), free(deq), free(dy), free(wq), free(dx0), free(dx1);
    }

    const int64_t n_kv = rnd_int(1, 3), g = rnd_int(1, 3), nh = n_kv * g, d = 8 * rnd_int(1, 4) + rnd_int(0, 1) * 3;
    const int64_t n = rnd_int(1, 150), kv = n_kv * d; /* up to four 48-row blocks */
    float *q = randv(n * nh * d), *k = randv(n * kv), *v = randv(n * kv), *dout = randv(n * nh * d);
    float *dq0 = randv(n * nh * d), *dk0 = calloc((size_t)(n * kv), 4), *dv0 = calloc((size_t)(n * kv), 4);
    float *dq1 = randv(n * nh * d), *dk1 = randv(n * kv), *dv1 = randv(n * kv), *sc = randv(n), *dp = randv(n);
    for (int64_t h = 0; h < nh; h++)
        ckls_attn_bwd_ref(q + h * d, k + h / g * d, v + h / g * d, dout + h * d, dq0 + h * d, dk0 + h / g * d,
                          dv0 + h / g * d, 0, n, nh * d, kv, d, 1.0f / sqrtf((float)d), sc, dp);
    CHECK(ckls_attention_backward(pool, q, k, v, dout, dq1, dk1, dv1, n, nh, n_kv, d) == 0, "attention_backward status");
    const double e = fmax(rel_err(dq1, dq0, n * nh * d), fmax(rel_err(dk1, dk0, n * kv), rel_err(dv1, dv0, n * kv)));
    CHECK(e < 2e-5, "attention_backward n=%lld heads %lld/%lld d=%lld: error %g", (long long)n, (long long)nh,
          (long long)n_kv, (long long)d, e);
    CHECK(ckls_attention_backward(pool, q, k, v, dout, dq1, dk1, dv1, n, 3, 2, d) == CKLS_EINVAL,
          "attention_backward accepts 3 query heads over 2 KV heads");
    /* the bf16 products: within their rounding of the reference. dQ and dK carry dP - rowsum(P dP), which in a row
     * over a few keys can cancel to a small fraction of its terms, where bf16's 8 bits leave little relative
     * accuracy: below 32 tokens the bound only catches wrong blocks, masks and tails (errors of order 1). */
    if (ckls_active_kernels()->gemm_tile_bf16) {
        const int64_t nw = ckls_attention_backward_scratch(ckls_pool_threads(pool), n, nh, n_kv, d);
        float *ws = malloc(sizeof(float) * (size_t)nw), *o = randv(n * nh * d), *lse = randv(n * nh);
        float *o0 = randv(n * nh * d);
        CHECK(ckls_attention(pool, q, k, v, o0, n, 0, nh, n_kv, d, kv) == 0, "attention status");
        ckls_attention_fwd(pool, q, k, v, o, lse, n, nh, n_kv, d, 1, ws);
        ckls_attention_bwd(pool, q, k, v, o, lse, dout, dq1, dk1, dv1, n, nh, n_kv, d, 1, ws);
        const double eo = rel_err(o, o0, n * nh * d);
        const double eb = fmax(rel_err(dq1, dq0, n * nh * d), fmax(rel_err(dk1, dk0, n * kv), rel_err(dv1, dv0, n * kv)));
        CHECK(eo < 1e-2 && eb < (n < 32 ? 0.25 : 2e-2), "attention bf16 n=%lld heads %lld/%lld d=%lld: forward error %g, backward %g",
              (long long)n, (long long)nh, (long long)n_kv, (long long)d, eo, eb);
        free(ws), free(o), free(lse), free(o0);
    }
    free(q), free(k), free(v), free(dout), free(dq0), free(dk0), free(dv0), free(dq1), free(dk1), free(dv1);
    free(sc), free(dp);
}

int main(int argc, char **argv) {
    test_seed(argc, argv, "test_backward");
    for (int isa = 1; isa < CKLS_ISA_COUNT; isa++) {
        const ckls_isa_kernels *k = ckls_isa_table(isa);
        if (!k || k->gemm_tile == ckls_gemm_tile_ref) continue; /* no training kernels of its own (NEON) */
        for (int rep = 0; rep < 3; rep++) {
            test_gemm_tiles(isa, k);
            test_gemm_nt(isa, k);
            test_exp(isa, k);
            test_transpose(isa, k);
            test_softmax(isa, k);
            if (k->gemm_tile_bf16) test_bf16(isa, k);
        }
    }
#if defined(CKLS_HAVE_AVX512)
    if (ckls_isa_available(CKLS_ISA_AVX512)) { /* the AVX-512 tile, also where its table trains on AVX2's */
        ckls_isa_kernels t = *ckls_isa_table(CKLS_ISA_AVX512);
        t.gemm_tile = ckls_gemm_tile_avx512;
        for (int rep = 0; rep < 3; rep++) test_gemm_tiles(CKLS_ISA_AVX512, &t);
    }
#endif
    for (int nth = 1; nth <= 3; nth++) {
        ckls_pool *pool = ckls_pool_create(nth);
        for (int isa = 0; isa < CKLS_ISA_COUNT; isa++) { /* the drivers on each ISA's tile */
            if (!ckls_isa_available(isa) || ckls_set_isa(isa)) continue;
            for (int rep = 0; rep < 3; rep++) test_drivers(pool);
        }
        ckls_set_isa(ckls_isa_detected());
        ckls_pool_free(pool);
    }
    return test_report();
}
