/* test_kernels.c — every SIMD kernel against its scalar reference, on fresh random data each run.
 *
 *   test_kernels [seed]      (seed defaults to the clock; it is printed so a failure can be replayed)
 *
 * For each ISA this build and CPU have besides scalar:
 *   - activation quantizers (Q8_0, Q8_K): output bytes identical to the scalar reference, including ties,
 *     zero blocks, huge/tiny values and NaN/Inf;
 *   - dots of every weight type at odd block counts, in two modes:
 *       exact: scales of 1 (or 2) and small activations, so every partial sum is an integer below 2^24 and any
 *              summation order gives the same float: the ISA must equal the reference bit for bit (this is
 *              where a wrong nibble, scale or offset cannot hide behind a tolerance);
 *       real:  quantized gaussian data with arbitrary scales, compared within 1e-5 (3e-5 for float rows) of
 *              sum |w*x| (accumulation order differs).
 *   - 4-row dots (ckls_vec_dot_4r) against four scalar 1-row dots, rows at an odd stride;
 *   - 4-token dots (vec_dot_4c, vec_dot_4x4) bit-identical to the 4-row decode dots, and near the scalar one;
 *   - interleaved 8-row kernels (gemm_x8) over repacked matrices: bit-identical to their scalar references
 *     and, per token, to their own one-token call; near the scalar row dots; the 16-row kernels over two
 *     adjacent groups (gemm_x16) and the AMX tile kernel over pairs of groups x 16-token tiles (gemm_tiles)
 *     bit-identical to the 8-row references; Q8_0 through matmul with the ISA active, repacked and not,
 *     bit-identical (prompt and one token at a time, 1..9 and 16..50 tokens);
 *   - attention over the block-transposed K cache (attn_kt) against the scalar reference at odd head dims, group
 *     sizes, token counts and cache lengths, and each token's row the same alone as in its batch.
 * Scalar references themselves: dots against a double dot of the dequantized rows, and quantize/dequantize
 * round trips with relative-RMSE bounds. Every buffer is malloc'ed at its exact size so ASan sees tail reads.
 * Last line: "N passed, N failed"; exit status non-zero on failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "matmul.h"
#include "quant.h"
#include "test_util.h"

static float rnd_normal(void) {
    float u = rnd_unit(), v = rnd_unit();
    return sqrtf(-2.0f * logf(u + 1e-12f)) * cosf(6.2831853f * v);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        printf("out of memory\n");
        exit(2);
    }
    return p;
}

static const int WEIGHT_TYPES[] = {CKLS_TYPE_F32, CKLS_TYPE_F16, CKLS_TYPE_BF16, CKLS_TYPE_Q8_0,
                                   CKLS_TYPE_Q4_0, CKLS_TYPE_Q4_K, CKLS_TYPE_Q6_K};
#define N_WEIGHT_TYPES (int)(sizeof WEIGHT_TYPES / sizeof WEIGHT_TYPES[0])
static const int BLOCK_COUNTS[] = {1, 3, 7, 13, 33, 65};
#define N_BLOCK_COUNTS (int)(sizeof BLOCK_COUNTS / sizeof BLOCK_COUNTS[0])

static int64_t row_bytes(int type, int64_t n) { return ckls_row_bytes(type, n); }

/* ---- data families --------------------------------------------------------------------------------------- */
enum { FAM_NORMAL, FAM_SCALED, FAM_TIES, FAM_SPECIAL, FAM_COUNT };
static const char *FAM_NAMES[] = {"normal", "scaled", "ties", "special"};

/* Fills x (n floats, n a multiple of blck) with one family's values. */
static void fill(float *x, int64_t n, int blck, int fam) {
    for (int64_t b = 0; b < n / blck; b++) {
        float *xb = x + b * blck;
        const float scale = fam == FAM_SCALED ? powf(10.0f, (float)rnd_int(-30, 30)) : 1.0f;
        for (int j = 0; j < blck; j++) xb[j] = rnd_normal() * scale;
        if (fam == FAM_TIES) {
            /* max |x| = 127 makes the step exactly 1 (Q8_0: d = 127/127; Q8_K: iscale = -127/max = +-1), so
             * the k + 0.5 values land exactly on rounding ties */
            for (int j = 0; j < blck; j++) xb[j] = (float)rnd_int(-126, 125) + (rnd() & 1 ? 0.5f : 0.0f);
            xb[rnd_int(0, blck - 1)] = rnd() & 1 ? 127.0f : -127.0f;
        }
        if (fam == FAM_SPECIAL) {
            const int kind = rnd_int(0, 4);
            if (kind == 0) memset(xb, 0, (size_t)blck * sizeof(float)); /* all zero */
            if (kind == 1) xb[rnd_int(0, blck - 1)] = NAN;
            if (kind == 2) xb[rnd_int(0, blck - 1)] = rnd() & 1 ? INFINITY : -INFINITY;
            if (kind == 3) for (int j = 0; j < blck; j++) xb[j] = (rnd() & 1 ? 1e-40f : -1e-40f) * (float)rnd_int(0, 9);
            if (kind == 4) { /* same magnitude twice with both signs: the first one must win */
                int a = rnd_int(0, blck - 1), c = rnd_int(0, blck - 1);
                xb[a] = 50.0f;
                xb[c] = -50.0f;
            }
        }
    }
}

/* ---- activation quantizers ------------------------------------------------------------------------------- */
static void test_quantize_act(int isa, const ckls_isa_kernels *k, const ckls_isa_kernels *ref) {
    const int types[] = {CKLS_TYPE_Q8_0, CKLS_TYPE_Q8_K};
    for (int t = 0; t < 2; t++) {
        const int type = types[t];
        const int blck = (int)ckls_type_block_size(type);
        for (int c = 0; c < N_BLOCK_COUNTS; c++) {
            const int64_t n = (int64_t)blck * BLOCK_COUNTS[c];
            for (int fam = 0; fam < FAM_COUNT; fam++) {
                float *x = xmalloc((size_t)n * sizeof(float));
                uint8_t *y0 = xmalloc((size_t)row_bytes(type, n)), *y1 = xmalloc((size_t)row_bytes(type, n));
                fill(x, n, blck, fam);
                memset(y0, 0xA5, (size_t)row_bytes(type, n));
                memset(y1, 0x5A, (size_t)row_bytes(type, n));
                ref->quantize_act[type](x, y0, n);
                k->quantize_act[type](x, y1, n);
                int64_t first = -1;
                for (int64_t i = 0; i < row_bytes(type, n); i++)
                    if (y0[i] != y1[i]) { first = i; break; }
                CHECK(first < 0, "%s quantize_act %s n=%lld %s: byte %lld differs (%u vs scalar %u)", ckls_isa_name(isa),
                      ckls_type_get(type)->name, (long long)n, FAM_NAMES[fam], (long long)first,
                      first >= 0 ? y1[first] : 0, first >= 0 ? y0[first] : 0);
                free(x);
                free(y0);
                free(y1);
            }
        }
    }
}

/* the trainer's 7-bit Q8_0 quantizer (quantize_a7): bit for bit the scalar reference, every quant in [-64, 63] */
static void test_quantize_a7(int isa, const ckls_isa_kernels *k) {
    for (int c = 0; c < N_BLOCK_COUNTS; c++) {
        const int64_t n = (int64_t)QK8_0 * BLOCK_COUNTS[c], rb = row_bytes(CKLS_TYPE_Q8_0, n);
        for (int fam = 0; fam < FAM_COUNT; fam++) {
            float *x = xmalloc((size_t)n * sizeof(float));
            uint8_t *y0 = xmalloc((size_t)rb), *y1 = xmalloc((size_t)rb);
            fill(x, n, QK8_0, fam);
            memset(y0, 0xA5, (size_t)rb);
            memset(y1, 0x5A, (size_t)rb);
            const int64_t nb = n / QK8_0;
            int32_t *o0 = xmalloc(sizeof(int32_t) * (size_t)nb), *o1 = xmalloc(sizeof(int32_t) * (size_t)nb);
            float *d0 = xmalloc(sizeof(float) * (size_t)nb), *d1 = xmalloc(sizeof(float) * (size_t)nb);
            ckls_quantize_q8_0_a7_ref(x, y0, n, o0, d0);
            k->quantize_a7(x, y1, n, o1, d1);
            CHECK(memcmp(y0, y1, (size_t)rb) == 0, "%s quantize_a7 n=%lld %s: differs from the scalar reference",
                  ckls_isa_name(isa), (long long)n, FAM_NAMES[fam]);
            /* the terms: the reference's from the blocks, the kernel's from its registers */
            CHECK(memcmp(o0, o1, sizeof(int32_t) * (size_t)nb) == 0 && memcmp(d0, d1, sizeof(float) * (size_t)nb) == 0,
                  "%s quantize_a7 n=%lld %s: block terms differ from the reference's", ckls_isa_name(isa),
                  (long long)n, FAM_NAMES[fam]);
            memset(y1, 0x5A, (size_t)rb); /* and without the terms: the same blocks */
            k->quantize_a7(x, y1, n, NULL, NULL);
            CHECK(memcmp(y0, y1, (size_t)rb) == 0, "%s quantize_a7 n=%lld %s: without terms, other blocks",
                  ckls_isa_name(isa), (long long)n, FAM_NAMES[fam]);
            free(o0);
            free(o1);
            free(d0);
            free(d1);
            const block_q8_0 *b = (const block_q8_0 *)y1;
            for (int64_t i = 0; i < n; i++)
                CHECK(b[i / QK8_0].qs[i % QK8_0] >= -64 && b[i / QK8_0].qs[i % QK8_0] <= 63,
                      "%s quantize_a7 n=%lld %s: quant %d out of 7 bits", ckls_isa_name(isa), (long long)n,
                      FAM_NAMES[fam], b[i / QK8_0].qs[i % QK8_0]);
            free(x);
            free(y0);
            free(y1);
        }
    }
}

/* ---- dots ------------------------------------------------------------------------------------------------- */
static float f16_pow2(int e) { return ldexpf(1.0f, e); }

/* Random raw weight row in `type` for exact mode: scales 1 or 2 (K-quants: 1), quants arbitrary. */
static void exact_weights(int type, void *w, int64_t n) {
    uint8_t *raw = w;
    for (int64_t i = 0; i < row_bytes(type, n); i++) raw[i] = (uint8_t)rnd();
    const int64_t nb = n / ckls_type_block_size(type);
    switch (type) {
    case CKLS_TYPE_F32: for (int64_t i = 0; i < n; i++) ((float *)w)[i] = (float)rnd_int(-8, 8); break;
    case CKLS_TYPE_F16: for (int64_t i = 0; i < n; i++) ((ckls_f16 *)w)[i] = ckls_f32_to_f16((float)rnd_int(-8, 8)); break;
    case CKLS_TYPE_BF16: for (int64_t i = 0; i < n; i++) ((ckls_bf16 *)w)[i] = ckls_f32_to_bf16((float)rnd_int(-8, 8)); break;
    case CKLS_TYPE_Q8_0: for (int64_t b = 0; b < nb; b++) ((block_q8_0 *)w)[b].d = ckls_f32_to_f16(f16_pow2(rnd_int(0, 1))); break;
    case CKLS_TYPE_Q4_0: for (int64_t b = 0; b < nb; b++) ((block_q4_0 *)w)[b].d = ckls_f32_to_f16(f16_pow2(rnd_int(0, 1))); break;
    case CKLS_TYPE_Q4_K:
        for (int64_t b = 0; b < nb; b++) ((block_q4_K *)w)[b].d = ((block_q4_K *)w)[b].dmin = ckls_f32_to_f16(1.0f);
        break;
    case CKLS_TYPE_Q6_K:
        for (int64_t b = 0; b < nb; b++) {
            block_q6_K *blk = (block_q6_K *)w + b;
            blk->d = ckls_f32_to_f16(1.0f);
            for (int g = 0; g < 16; g++) blk->scales[g] = (int8_t)rnd_int(-32, 31);
        }
        break;
    }
}

/* Random activation row in the dot's activation format for exact mode: d = 1, quants in -amax..amax. */
static void exact_acts(int vtype, void *x, int64_t n, int amax) {
    if (vtype == CKLS_TYPE_F32) {
        for (int64_t i = 0; i < n; i++) ((float *)x)[i] = (float)rnd_int(-8, 8);
    } else if (vtype == CKLS_TYPE_Q8_0) {
        for (int64_t b = 0; b < n / QK8_0; b++) {
            block_q8_0 *blk = (block_q8_0 *)x + b;
            blk->d = ckls_f32_to_f16(1.0f);
            for (int j = 0; j < QK8_0; j++) blk->qs[j] = (int8_t)rnd_int(-amax, amax);
        }
    } else { /* Q8_K, with consistent bsums */
        for (int64_t b = 0; b < n / QK_K; b++) {
            block_q8_K *blk = (block_q8_K *)x + b;
            blk->d = 1.0f;
            for (int g = 0; g < 16; g++) {
                int s = 0;
                for (int j = 0; j < 16; j++) s += blk->qs[16 * g + j] = (int8_t)rnd_int(-amax, amax);
                blk->bsums[g] = (int16_t)s;
            }
        }
    }
}

/* sum |w_i * x_i| in double from the dequantized rows (the scale of a dot's rounding error); also the
 * double-precision dot itself */
static double dequant_dot(int type, const void *w, const void *xq, int64_t n, double *mag) {
    const int vtype = ckls_type_vec_dot_type(type);
    float *wf = xmalloc((size_t)n * sizeof(float)), *xf = xmalloc((size_t)n * sizeof(float));
    ckls_type_get(type)->to_float(w, wf, n);
    ckls_type_get(vtype)->to_float(xq, xf, n);
    double dot = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        dot += (double)wf[i] * xf[i];
        m += fabs((double)wf[i] * xf[i]);
    }
    free(wf);
    free(xf);
    *mag = m;
    return dot;
}

static int is_float_type(int type) { return type == CKLS_TYPE_F32 || type == CKLS_TYPE_F16 || type == CKLS_TYPE_BF16; }

static void test_dots(int isa, const ckls_isa_kernels *k, const ckls_isa_kernels *ref) {
    for (int t = 0; t < N_WEIGHT_TYPES; t++) {
        const int type = WEIGHT_TYPES[t];
        const int vtype = ckls_type_vec_dot_type(type);
        const char *tname = ckls_type_get(type)->name;
        const int blck = is_float_type(type) ? 1 : (int)ckls_type_block_size(type);
        for (int c = 0; c < N_BLOCK_COUNTS; c++) {
            /* float rows: lengths that are not multiples of any vector width, up to a few thousand */
            const int64_t n = is_float_type(type) ? (int64_t)BLOCK_COUNTS[c] * 63 + rnd_int(0, 7)
                                                  : (int64_t)blck * BLOCK_COUNTS[c];
            void *w = xmalloc((size_t)row_bytes(type, n));
            void *xq = xmalloc((size_t)row_bytes(vtype, n));
            float *xf = xmalloc((size_t)n * sizeof(float)), *wf = xmalloc((size_t)n * sizeof(float));
            float s_ref, s_isa;

            /* exact mode (block counts where the integer sums provably stay below 2^24) */
            const int exact_ok = is_float_type(type) || type == CKLS_TYPE_Q8_0 || type == CKLS_TYPE_Q4_0 ||
                                 BLOCK_COUNTS[c] <= 13;
            if (exact_ok) {
                for (int rep = 0; rep < 4; rep++) {
                    exact_weights(type, w, n);
                    exact_acts(vtype, xq, n, type == CKLS_TYPE_Q4_K || type == CKLS_TYPE_Q6_K ? 3 : 15);
                    ref->vec_dot[type](n, &s_ref, w, xq);
                    k->vec_dot[type](n, &s_isa, w, xq);
                    double mag, dd = dequant_dot(type, w, xq, n, &mag);
                    CHECK(s_isa == s_ref && (double)s_ref == dd, "%s vec_dot %s exact n=%lld: %.9g vs scalar %.9g (double %.17g)",
                          ckls_isa_name(isa), tname, (long long)n, s_isa, s_ref, dd);
                }
            }

            /* real mode: gaussian data through the reference quantizers; also random raw bytes for the
             * integer weight formats (arbitrary scales) */
            for (int rep = 0; rep < 3; rep++) {
                for (int64_t i = 0; i < n; i++) {
                    wf[i] = rnd_normal() * 0.05f;
                    xf[i] = rnd_normal() * (rep == 2 ? 100.0f : 1.0f);
                }
                ckls_type_get(type)->from_float_ref(wf, w, n);
                if (rep == 1 && !is_float_type(type)) { /* raw bytes, finite scales */
                    uint8_t *raw = w;
                    for (int64_t i = 0; i < row_bytes(type, n); i++) raw[i] = (uint8_t)rnd();
                    const int64_t nb = n / blck;
                    for (int64_t b = 0; b < nb; b++) {
                        ckls_f16 d = ckls_f32_to_f16(rnd_normal() * 0.01f), d2 = ckls_f32_to_f16(rnd_unit() * 0.01f);
                        if (type == CKLS_TYPE_Q8_0) ((block_q8_0 *)w)[b].d = d;
                        if (type == CKLS_TYPE_Q4_0) ((block_q4_0 *)w)[b].d = d;
                        if (type == CKLS_TYPE_Q4_K) { ((block_q4_K *)w)[b].d = d; ((block_q4_K *)w)[b].dmin = d2; }
                        if (type == CKLS_TYPE_Q6_K) ((block_q6_K *)w)[b].d = d;
                    }
                }
                ref->quantize_act[vtype](xf, xq, n);
                ref->vec_dot[type](n, &s_ref, w, xq);
                k->vec_dot[type](n, &s_isa, w, xq);
                double mag, dd = dequant_dot(type, w, xq, n, &mag);
                const double tol = (is_float_type(type) ? 3e-5 : 1e-5) * mag + 1e-30;
                CHECK(fabs((double)s_isa - s_ref) <= tol, "%s vec_dot %s n=%lld rep %d: %.9g vs scalar %.9g (tol %.3g)",
                      ckls_isa_name(isa), tname, (long long)n, rep, s_isa, s_ref, tol);
                CHECK(fabs((double)s_ref - dd) <= tol, "scalar vec_dot %s n=%lld: %.9g vs double %.17g", tname,
                          (long long)n, s_ref, dd);
            }
            free(w);
            free(xq);
            free(xf);
            free(wf);
        }
    }
}

/* 4-row kernels (ckls_vec_dot_4r: the ISA's own or the 1-row fallback) against 4 scalar 1-row dots; rows sit
 * at a stride larger than a row (odd padding) in one exact-size buffer. */
static void test_dots_4r(int isa, const ckls_isa_kernels *k, const ckls_isa_kernels *ref) {
    for (int t = 0; t < N_WEIGHT_TYPES; t++) {
        const int type = WEIGHT_TYPES[t];
        const int vtype = ckls_type_vec_dot_type(type);
        const int blck = is_float_type(type) ? 1 : (int)ckls_type_block_size(type);
        for (int c = 0; c < 4; c++) {
            const int64_t n = is_float_type(type) ? (int64_t)BLOCK_COUNTS[c] * 63 + rnd_int(0, 7)
                                                  : (int64_t)blck * BLOCK_COUNTS[c];
            /* padding keeps blocks 2-aligned (f16 fields), as every real row stride is */
            const int64_t rb = row_bytes(type, n);
            const int64_t stride = rb + (is_float_type(type) ? 4 * rnd_int(0, 3) : 2 * rnd_int(0, 18));
            char *w = xmalloc((size_t)(3 * stride + rb));
            void *xq = xmalloc((size_t)row_bytes(vtype, n));
            float *xf = xmalloc((size_t)n * sizeof(float)), *wf = xmalloc((size_t)n * sizeof(float));
            for (int exact = 0; exact < 2; exact++) {
                if (exact && !(is_float_type(type) || type == CKLS_TYPE_Q8_0 || type == CKLS_TYPE_Q4_0 || BLOCK_COUNTS[c] <= 13))
                    continue;
                for (int r = 0; r < 4; r++) {
                    if (exact) exact_weights(type, w + r * stride, n);
                    else {
                        for (int64_t i = 0; i < n; i++) wf[i] = rnd_normal() * 0.05f;
                        ckls_type_get(type)->from_float_ref(wf, w + r * stride, n);
                    }
                }
                if (exact) exact_acts(vtype, xq, n, type == CKLS_TYPE_Q4_K || type == CKLS_TYPE_Q6_K ? 3 : 15);
                else {
                    for (int64_t i = 0; i < n; i++) xf[i] = rnd_normal();
                    ref->quantize_act[vtype](xf, xq, n);
                }
                float s4[4];
                ckls_vec_dot_4r(k, type, n, s4, w, stride, xq);
                for (int r = 0; r < 4; r++) {
                    float s1;
                    ref->vec_dot[type](n, &s1, w + r * stride, xq);
                    double mag;
                    dequant_dot(type, w + r * stride, xq, n, &mag);
                    const double tol = exact ? 0.0 : (is_float_type(type) ? 3e-5 : 1e-5) * mag + 1e-30;
                    CHECK(fabs((double)s4[r] - s1) <= tol, "%s vec_dot_4r %s %s n=%lld row %d: %.9g vs scalar %.9g",
                          ckls_isa_name(isa), ckls_type_get(type)->name, exact ? "exact" : "real", (long long)n, r,
                          s4[r], s1);
                }
            }
            free(w);
            free(xq);
            free(xf);
            free(wf);
        }
    }
}

/* 4-token kernels (prompt processing): vec_dot_4c, one weight row against 4 activation rows at an odd stride,
 * and the 4x4 tile vec_dot_4x4.
 * They must equal the 4-row decode kernel (ckls_vec_dot_4r: the ISA's own, else 4 one-row dots) bit for bit:
 * matmul uses 4c and 4r on the same full row blocks, and a token's logits must not depend on whether it
 * arrived in a prompt batch or alone. */
static void test_dots_4c(int isa, const ckls_isa_kernels *k, const ckls_isa_kernels *ref) {
    for (int t = 0; t < N_WEIGHT_TYPES; t++) {
        const int type = WEIGHT_TYPES[t];
        if (!k->vec_dot_4c[type] && !k->vec_dot_4x4[type]) continue;
        const int vtype = ckls_type_vec_dot_type(type);
        const int blck = (int)ckls_type_block_size(type);
        for (int c = 0; c < N_BLOCK_COUNTS; c++) {
            const int64_t n = (int64_t)blck * BLOCK_COUNTS[c];
            const int64_t rb = row_bytes(type, n), xb = row_bytes(vtype, n);
            const int64_t wstride = rb + 2 * rnd_int(0, 18), xstride = xb + 4 * rnd_int(0, 9); /* Q8_K holds a float */
            char *w = xmalloc((size_t)(3 * wstride + rb));
            char *xq = xmalloc((size_t)(7 * xstride + xb)); /* 8 tokens (gemm_x16 takes up to 8) */
            float *f = xmalloc((size_t)n * sizeof(float));
            for (int r = 0; r < 4; r++) {
                for (int64_t i = 0; i < n; i++) f[i] = rnd_normal() * 0.05f;
                ckls_type_get(type)->from_float_ref(f, w + r * wstride, n);
                for (int64_t i = 0; i < n; i++) f[i] = rnd_normal() * (r == 3 ? 1e-3f : 1.0f);
                ref->quantize_act[vtype](f, xq + r * xstride, n);
            }
            float s16[16];
            if (k->vec_dot_4x4[type]) k->vec_dot_4x4[type](n, s16, w, wstride, xq, xstride);
            for (int r = 0; r < 4; r++) {
                float s4[4];
                if (k->vec_dot_4c[type]) k->vec_dot_4c[type](n, s4, w + r * wstride, xq, xstride);
                else
                    for (int tok = 0; tok < 4; tok++) s4[tok] = s16[tok * 4 + r];
                for (int tok = 0; tok < 4; tok++) {
                    float s_ref, s4r[4];
                    ref->vec_dot[type](n, &s_ref, w + r * wstride, xq + tok * xstride);
                    ckls_vec_dot_4r(k, type, n, s4r, w, wstride, xq + tok * xstride);
                    double mag;
                    dequant_dot(type, w + r * wstride, xq + tok * xstride, n, &mag);
                    CHECK(s4[tok] == s4r[r], "%s vec_dot_4c %s n=%lld row %d tok %d: %.9g, 4-row %.9g",
                          ckls_isa_name(isa), ckls_type_get(type)->name, (long long)n, r, tok, s4[tok], s4r[r]);
                    if (k->vec_dot_4x4[type])
                        CHECK(s16[tok * 4 + r] == s4r[r], "%s vec_dot_4x4 %s n=%lld row %d tok %d: %.9g, 4-row %.9g",
                              ckls_isa_name(isa), ckls_type_get(type)->name, (long long)n, r, tok, s16[tok * 4 + r],
                              s4r[r]);
                    CHECK(fabs((double)s4[tok] - s_ref) <= 1e-5 * mag + 1e-30,
                          "%s vec_dot_4c %s n=%lld: %.9g vs scalar %.9g", ckls_isa_name(isa),
                          ckls_type_get(type)->name, (long long)n, s4[tok], s_ref);
                }
            }
            free(w);
            free(xq);
            free(f);
        }
    }
}

/* 8-row kernels over repacked matrices (gemm_x8): n_out = 8 * groups + a tail (rows the repack leaves in the
 * original layout), weights from the reference quantizer or raw random bytes, activations at an odd stride.
 * Exactly the scalar reference for nt = 1..4, each token exactly its one-token result (decode = prompt), and
 * within 1e-5 of the scalar row dot. Q8_0 must also equal the ISA's own 4-row kernel bit for bit (prompts may
 * stay on the row kernels). The scalar table's own references run through the same checks. */
static void test_gemm_x8(int isa, const ckls_isa_kernels *k) {
    static const int TYPES[] = {CKLS_TYPE_Q4_0, CKLS_TYPE_Q4_K, CKLS_TYPE_Q8_0, CKLS_TYPE_Q6_K};
    for (int ti = 0; ti < 4; ti++) {
        const int type = TYPES[ti], vtype = ckls_type_vec_dot_type(type);
        const int blck = (int)ckls_type_block_size(type);
        void (*ref)(int64_t, float *, int64_t, const void *, const void *, int64_t, const int16_t *, int) =
            type == CKLS_TYPE_Q4_0 ? ckls_gemm_q4_0x8_ref : type == CKLS_TYPE_Q4_K ? ckls_gemm_q4_Kx8_ref
            : type == CKLS_TYPE_Q6_K ? ckls_gemm_q6_Kx8_ref : ckls_gemm_q8_0x8_ref;
        if (!k->gemm_x8[type]) continue;
        const int64_t psize = type == CKLS_TYPE_Q4_0 ? 144 : type == CKLS_TYPE_Q4_K ? 1184 : type == CKLS_TYPE_Q6_K ? 1680 : 272;
        for (int c = 0; c < N_BLOCK_COUNTS; c++) {
            const int64_t n = (int64_t)blck * BLOCK_COUNTS[c], groups = rnd_int(c % 2 ? 1 : 2, 3), n_out = 8 * groups + rnd_int(0, 7);
            const int64_t rb = row_bytes(type, n), xb = row_bytes(vtype, n), nb = n / blck;
            const int64_t xstride = xb + 4 * rnd_int(0, 9);
            const int64_t pbytes = ckls_packed_bytes(type, n_out, n);
            CHECK(pbytes == groups * nb * psize, "packed bytes %lld", (long long)pbytes);
            char *w = xmalloc((size_t)(n_out * rb)), *packed = xmalloc((size_t)pbytes);
            char *xq = xmalloc((size_t)(7 * xstride + xb)); /* 8 tokens (gemm_x16 takes up to 8) */
            float *f = xmalloc((size_t)n * sizeof(float));
            int16_t *aux = xmalloc((size_t)(8 * (n / QK8_0)) * sizeof(int16_t));
            const int raw = rnd() & 1;
            for (int64_t r = 0; r < n_out; r++) {
                for (int64_t i = 0; i < n; i++) f[i] = rnd_normal() * 0.05f;
                ckls_type_get(type)->from_float_ref(f, w + r * rb, n);
            }
            if (raw) { /* every nibble and 6-bit scale/min pattern, finite scales */
                for (int64_t i = 0; i < n_out * rb; i++) ((uint8_t *)w)[i] = (uint8_t)rnd();
                for (int64_t b = 0; b < n_out * nb; b++) {
                    if (type == CKLS_TYPE_Q4_0) ((block_q4_0 *)w)[b].d = ckls_f32_to_f16(rnd_normal() * 0.01f);
                    else if (type == CKLS_TYPE_Q8_0) { /* -128 is outside the quantizer's range (and dot_i8's) */
                        block_q8_0 *q = &((block_q8_0 *)w)[b];
                        q->d = ckls_f32_to_f16(rnd_normal() * 0.01f);
                        for (int e = 0; e < QK8_0; e++) q->qs[e] = q->qs[e] == -128 ? -127 : q->qs[e];
                    } else if (type == CKLS_TYPE_Q6_K) { /* every level and int8 scale, finite d */
                        ((block_q6_K *)w)[b].d = ckls_f32_to_f16(rnd_normal() * 0.01f);
                    } else {
                        ((block_q4_K *)w)[b].d = ckls_f32_to_f16(rnd_normal() * 0.01f);
                        ((block_q4_K *)w)[b].dmin = ckls_f32_to_f16(rnd_unit() * 0.01f);
                    }
                }
            }
            for (int t = 0; t < 8; t++) {
                for (int64_t i = 0; i < n; i++) f[i] = rnd_normal() * (t == 3 ? 1e-3f : 1.0f);
                ckls_isa_table(CKLS_ISA_SCALAR)->quantize_act[vtype](f, xq + t * xstride, n);
            }
            ckls_repack_groups(type, w, n, 0, groups, packed);
            if (vtype == CKLS_TYPE_Q8_0) ckls_q8_0_block_sums(xq, xstride, n, 8, aux);
            const int64_t gb = pbytes / groups;
            for (int64_t g = 0; g < groups; g++) {
                const char *wg = packed + g * gb;
                float one[4][8];
                for (int t = 0; t < 4; t++)
                    k->gemm_x8[type](n, one[t], 8, wg, xq + t * xstride, xstride,
                                     vtype == CKLS_TYPE_Q8_0 ? aux + t * (n / QK8_0) : NULL, 1);
                if (type == CKLS_TYPE_Q8_0 && k->vec_dot_4r[type])
                    for (int t = 0; t < 4; t++)
                        for (int h = 0; h < 2; h++) {
                            float s4[4];
                            k->vec_dot_4r[type](n, s4, w + (g * 8 + 4 * h) * rb, rb, xq + t * xstride);
                            for (int r = 0; r < 4; r++)
                                CHECK(s4[r] == one[t][4 * h + r], "%s gemm_x8 q8_0 n=%lld row %d tok %d: %.9g, 4-row %.9g",
                                      ckls_isa_name(isa), (long long)n, 4 * h + r, t, one[t][4 * h + r], s4[r]);
                        }
                for (int nt = 1; nt <= 4; nt++) {
                    float s_isa[4 * 11], s_ref[4 * 11]; /* odd output stride */
                    k->gemm_x8[type](n, s_isa, 11, wg, xq, xstride, aux, nt);
                    ref(n, s_ref, 11, wg, xq, xstride, aux, nt);
                    for (int t = 0; t < nt; t++)
                        for (int r = 0; r < 8; r++) {
                            const char *row = w + (g * 8 + r) * rb, *xt = xq + t * xstride;
                            float s1;
                            double mag;
                            ckls_isa_table(CKLS_ISA_SCALAR)->vec_dot[type](n, &s1, row, xt);
                            dequant_dot(type, row, xt, n, &mag);
                            const float v = s_isa[t * 11 + r];
                            CHECK(v == s_ref[t * 11 + r], "%s gemm_x8 %s n=%lld nt=%d g=%lld row %d tok %d: %.9g vs ref %.9g",
                                  ckls_isa_name(isa), ckls_type_get(type)->name, (long long)n, nt, (long long)g, r, t,
                                  v, s_ref[t * 11 + r]);
                            CHECK(v == one[t][r], "%s gemm_x8 %s n=%lld nt=%d row %d tok %d: %.9g, one-token %.9g",
                                  ckls_isa_name(isa), ckls_type_get(type)->name, (long long)n, nt, r, t, v, one[t][r]);
                            CHECK(fabs((double)v - s1) <= 1e-5 * mag + 1e-30, "%s gemm_x8 %s n=%lld%s row %d tok %d: %.9g vs dot %.9g",
                                  ckls_isa_name(isa), ckls_type_get(type)->name, (long long)n, raw ? " raw" : "", r, t, v, s1);
                        }
                }
            }
            /* the 16-row form over every pair of adjacent groups, 1..8 tokens: each lane exactly the 8-row
             * reference's */
            for (int64_t g = 0; k->gemm_x16[type] && g + 1 < groups; g++)
                for (int nt = 1; nt <= 8; nt++) {
                    float s16[8 * 19], s_ref[8 * 19]; /* odd output stride */
                    k->gemm_x16[type](n, s16, 19, packed + g * gb, gb, xq, xstride, aux, nt);
                    ref(n, s_ref, 19, packed + g * gb, xq, xstride, aux, nt);
                    ref(n, s_ref + 8, 19, packed + (g + 1) * gb, xq, xstride, aux, nt);
                    for (int t = 0; t < nt; t++)
                        for (int r = 0; r < 16; r++)
                            CHECK(s16[t * 19 + r] == s_ref[t * 19 + r], "%s gemm_x16 %s n=%lld nt=%d g=%lld row %d tok %d: %.9g vs ref %.9g",
                                  ckls_isa_name(isa), ckls_type_get(type)->name, (long long)n, nt, (long long)g, r, t,
                                  s16[t * 19 + r], s_ref[t * 19 + r]);
                }
            free(w);
            free(packed);
            free(xq);
            free(f);
            free(aux);
        }
    }
}

/* The tile kernel (gemm_tiles, AMX) over 1..3 tiles of 16 rows (at a padded row stride) x 16, 32 or 48 tokens
 * (at a padded activation stride, packed by ckls_q8_0_tiles_pack), into an odd output stride: every lane exactly the
 * 8-row reference's (ckls_gemm_q8_0x8_ref), with quantized and with raw random weights (every byte but -128). */
static void test_gemm_tiles(int isa, const ckls_isa_kernels *k) {
    if (!k->gemm_tiles[CKLS_TYPE_Q8_0]) return;
    for (int c = 0; c < N_BLOCK_COUNTS; c++) {
        const int64_t n = QK8_0 * BLOCK_COUNTS[c], nb = n / QK8_0, pairs = rnd_int(1, 3), nt = 16 * rnd_int(1, 3);
        const int64_t xb = row_bytes(CKLS_TYPE_Q8_0, n), rb = xb + 2 * rnd_int(0, 5), xstride = xb + 2 * rnd_int(0, 9);
        const int64_t ss = 16 * pairs + 5, gb = nb * (int64_t)sizeof(block_q8_0x8), n_out = 16 * pairs;
        char *w = xmalloc((size_t)(n_out * rb)), *packed = xmalloc((size_t)(2 * pairs * gb));
        char *xq = xmalloc((size_t)((nt - 1) * xstride + xb));
        int8_t *xt = xmalloc((size_t)(nt * n));
        float *f = xmalloc((size_t)n * sizeof(float)), *xd = xmalloc((size_t)(nt * nb) * sizeof(float));
        float *s = xmalloc((size_t)(nt * ss) * sizeof(float)), *s_ref = xmalloc((size_t)(nt * ss) * sizeof(float));
        const int raw = c % 2;
        for (int64_t r = 0; r < n_out; r++) {
            for (int64_t i = 0; i < n; i++) f[i] = rnd_normal() * 0.05f;
            ckls_quantize_q8_0_ref(f, w + r * rb, n);
            memset(w + r * rb + xb, 0x5a, (size_t)(rb - xb)); /* the padding must not be read */
            for (int64_t b = 0; raw && b < nb; b++) {
                block_q8_0 *q = (block_q8_0 *)(w + r * rb) + b;
                for (int e = 0; e < QK8_0; e++) q->qs[e] = (int8_t)(rnd() % 255 - 127);
            }
        }
        for (int64_t t = 0; t < nt; t++) {
            for (int64_t i = 0; i < n; i++) f[i] = rnd_normal() * (t == 3 ? 1e-3f : 1.0f);
            ckls_quantize_q8_0_ref(f, xq + t * xstride, n);
        }
        ckls_q8_0_tiles_pack(xq, xstride, n, nt, xt, xd);
        char *wc = xmalloc((size_t)(n_out * xb)); /* the groups are repacked from rows at the plain stride */
        for (int64_t r = 0; r < n_out; r++) memcpy(wc + r * xb, w + r * rb, (size_t)xb);
        ckls_repack_groups(CKLS_TYPE_Q8_0, wc, n, 0, 2 * pairs, packed);
        free(wc);
        k->gemm_tiles[CKLS_TYPE_Q8_0](n, s, ss, w, rb, pairs, xt, xd, nt);
        for (int64_t g = 0; g < 2 * pairs; g++)
            ckls_gemm_q8_0x8_ref(n, s_ref + 8 * g, ss, packed + g * gb, xq, xstride, NULL, (int)nt);
        int bad = 0;
        for (int64_t t = 0; t < nt && !bad; t++)
            for (int64_t r = 0; r < n_out && !bad; r++) {
                bad = s[t * ss + r] != s_ref[t * ss + r];
                CHECK(!bad, "%s gemm_tiles q8_0 n=%lld pairs=%lld nt=%lld%s row %lld tok %lld: %.9g vs ref %.9g",
                      ckls_isa_name(isa), (long long)n, (long long)pairs, (long long)nt, raw ? " raw" : "",
                      (long long)r, (long long)t, s[t * ss + r], s_ref[t * ss + r]);
            }
        free(w);
        free(packed);
        free(xq);
        free(xt);
        free(f);
        free(xd);
        free(s);
        free(s_ref);
    }
}

/* ckls_matmul_packed_ep against the product without it (y_plain, from the same quants), then the low-rank add as one
 * tile over the whole output and a plain add into the sum: bit for bit, through the packed groups and the tail rows
 * alike, and through the fallback when there is no packed copy; the low-rank add alone, the sum alone, both. The
 * ISA under test is active. */
static void check_epilogue(int isa, const char *w, const void *packed, int64_t n_out, int64_t n_in, const char *xq,
                           int64_t xs, int64_t n_tok, const float *y_plain, const ckls_a7_terms *a7) {
    const int64_t r = rnd_int(1, 9), ny = n_tok * n_out;
    const float scale = rnd_sym() * 2.0f;
    float *u = xmalloc(sizeof(float) * (size_t)(n_tok * r)), *bt = xmalloc(sizeof(float) * (size_t)(r * n_out));
    float *acc0 = xmalloc(sizeof(float) * (size_t)ny), *acc = xmalloc(sizeof(float) * (size_t)ny);
    float *want = xmalloc(sizeof(float) * (size_t)ny), *want_acc = xmalloc(sizeof(float) * (size_t)ny);
    float *got = xmalloc(sizeof(float) * (size_t)ny);
    for (int64_t i = 0; i < n_tok * r; i++) u[i] = rnd_normal();
    for (int64_t i = 0; i < r * n_out; i++) bt[i] = rnd_normal();
    for (int64_t i = 0; i < ny; i++) acc0[i] = rnd_normal();
    for (int kind = 1; kind < 4; kind++) { /* 1: low-rank, 2: sum, 3: both */
        memcpy(want, y_plain, sizeof(float) * (size_t)ny);
        if (kind & 1) ckls_active_kernels()->gemm_tile(n_tok, n_out, r, scale, u, r, 1, bt, n_out, 1, want, n_out);
        for (int64_t i = 0; i < ny; i++) want_acc[i] = kind & 2 ? acc0[i] + want[i] : acc0[i];
        const ckls_epilogue ep = {.u = kind & 1 ? u : NULL, .bt = bt, .r = r, .scale = scale,
                                  .acc = kind & 2 ? acc : NULL};
        for (int fallback = 0; fallback < 2; fallback++) {
            memcpy(acc, acc0, sizeof(float) * (size_t)ny);
            CHECK(ckls_matmul_packed_ep(NULL, CKLS_TYPE_Q8_0, w, fallback ? NULL : packed, n_out, n_in, xq, xs, n_tok,
                                        got, n_out, NULL, a7, &ep) == CKLS_OK, "matmul_packed_ep");
            int64_t bad = -1;
            for (int64_t i = 0; i < ny && bad < 0; i++) bad = got[i] == want[i] && acc[i] == want_acc[i] ? -1 : i;
            CHECK(bad < 0,
                  "%s matmul_packed_ep%s%s kind %d %lld x %lld, %lld tokens, rank %lld: out %lld %.9g (sum %.9g), "
                  "want %.9g (%.9g)", ckls_isa_name(isa), a7 ? " a7" : "", fallback ? " unpacked" : "", kind,
                  (long long)n_out, (long long)n_in, (long long)n_tok, (long long)r, (long long)bad,
                  bad < 0 ? 0.0 : got[bad], bad < 0 ? 0.0 : acc[bad], bad < 0 ? 0.0 : want[bad],
                  bad < 0 ? 0.0 : want_acc[bad]);
        }
    }
    free(u), free(bt), free(acc0), free(acc), free(want), free(want_acc), free(got);
}

/* Q8_0 through matmul itself, with the ISA active: a matrix repacked (its groups through gemm_x8, the tail rows
 * through the row kernels) gives the same bits as the row path (ckls_matmul_pre: 4-row kernels on full blocks of
 * 4 rows, one-row dots past them), prompt or one token at a time. Vocabulary-like row counts leave a tail of 0..7
 * rows. What tests/test_runtime_repack.py checks on a model, here also where only qemu runs the ISA. */
static void test_matmul_packed_q8_0(int isa, const ckls_isa_kernels *k) {
    if (!k->gemm_x8[CKLS_TYPE_Q8_0]) return;
    const int was = ckls_isa_active();
    CHECK(ckls_set_isa(isa) == CKLS_OK, "set_isa %s", ckls_isa_name(isa));
    for (int c = 0; c < 5; c++) { /* odd c: 16..50 tokens, the tile kernel's whole tiles and a rest; the last, a
                                    * prompt long enough to be handed out in ranges of tokens */
        const int64_t n_in = QK8_0 * BLOCK_COUNTS[c % 4 + 1], n_out = 8 * rnd_int(1, 7) + (c == 0 ? 7 : rnd_int(0, 7));
        const int64_t n_tok = c == 4 ? rnd_int(512, 700) : c % 2 ? rnd_int(16, 50) : rnd_int(1, 9);
        const int64_t rb = row_bytes(CKLS_TYPE_Q8_0, n_in);
        char *w = xmalloc((size_t)(n_out * rb)), *xq = xmalloc((size_t)(n_tok * rb));
        float *f = xmalloc((size_t)n_in * sizeof(float));
        float *y_row = xmalloc((size_t)(n_tok * n_out) * sizeof(float)), *y_packed = xmalloc((size_t)(n_tok * n_out) * sizeof(float));
        float *y_one = xmalloc((size_t)n_out * sizeof(float));
        for (int64_t r = 0; r < n_out; r++) {
            for (int64_t i = 0; i < n_in; i++) f[i] = rnd_normal() * 0.05f;
            ckls_quantize_q8_0_ref(f, w + r * rb, n_in);
        }
        for (int64_t t = 0; t < n_tok; t++) {
            for (int64_t i = 0; i < n_in; i++) f[i] = rnd_normal();
            ckls_quantize_q8_0_ref(f, xq + t * rb, n_in);
        }
        int64_t bytes;
        void *packed = ckls_repack_matrix(NULL, CKLS_TYPE_Q8_0, w, n_out, n_in, &bytes);
        CHECK(packed && bytes == ckls_packed_bytes(CKLS_TYPE_Q8_0, n_out, n_in), "%s repack q8_0 %lld x %lld",
              ckls_isa_name(isa), (long long)n_out, (long long)n_in);
        CHECK(ckls_matmul_pre(NULL, CKLS_TYPE_Q8_0, w, n_out, n_in, xq, rb, n_tok, y_row, n_out, NULL) == CKLS_OK, "matmul_pre");
        CHECK(ckls_matmul_packed(NULL, CKLS_TYPE_Q8_0, w, packed, n_out, n_in, xq, rb, n_tok, y_packed, n_out, NULL) == CKLS_OK,
              "matmul_packed");
        check_epilogue(isa, w, packed, n_out, n_in, xq, rb, n_tok, y_packed, NULL);
        for (int64_t t = 0; t < n_tok; t++) {
            CHECK(ckls_matmul_packed(NULL, CKLS_TYPE_Q8_0, w, packed, n_out, n_in, xq + t * rb, rb, 1, y_one, n_out, NULL) == CKLS_OK,
                  "matmul_packed one token");
            for (int64_t r = 0; r < n_out; r++) {
                const float v = y_packed[t * n_out + r];
                CHECK(v == y_row[t * n_out + r], "%s matmul q8_0 %lld x %lld, %lld tokens: row %lld tok %lld repacked %.9g, rows %.9g",
                      ckls_isa_name(isa), (long long)n_out, (long long)n_in, (long long)n_tok, (long long)r, (long long)t, v,
                      y_row[t * n_out + r]);
                CHECK(v == y_one[r], "%s matmul q8_0 %lld x %lld: row %lld tok %lld in a batch %.9g, alone %.9g",
                      ckls_isa_name(isa), (long long)n_out, (long long)n_in, (long long)r, (long long)t, v, y_one[r]);
            }
        }
        ckls_aligned_free(packed);
        free(w);
        free(xq);
        free(f);
        free(y_row);
        free(y_packed);
        free(y_one);
    }
    ckls_set_isa(was);
}

/* The trainer's Q8_0 kernel against 7-bit activations (gemm_x8_a7), where the ISA has one: per group and 1..4 tokens
 * exactly the 8-row reference (ckls_gemm_q8_0x8_ref) on the same quants, with quantized weights and with raw bytes
 * (every one, -128 included), activations from quantize_a7 or raw 7-bit quants (both extremes); and through
 * ckls_matmul_packed_a7 (tail rows, hand-out) exactly the row dots' result. */
static void test_gemm_x8_a7(int isa, const ckls_isa_kernels *k) {
    if (!k->gemm_x8_a7) return;
    const int was = ckls_isa_active();
    CHECK(ckls_set_isa(isa) == CKLS_OK, "set_isa %s", ckls_isa_name(isa));
    for (int c = 0; c < N_BLOCK_COUNTS; c++) {
        const int64_t n = QK8_0 * BLOCK_COUNTS[c], nb = n / QK8_0, rb = row_bytes(CKLS_TYPE_Q8_0, n);
        const int64_t groups = rnd_int(1, 3), n_out = 8 * groups + rnd_int(0, 7);
        const int64_t n_tok = c == 2 ? rnd_int(512, 600) : rnd_int(1, 11); /* c == 2: the product in token ranges */
        const int64_t xs = rb + 4 * rnd_int(0, 5);
        const int raw = c % 2;
        char *w = xmalloc((size_t)(n_out * rb)), *xq = xmalloc((size_t)(n_tok * xs));
        float *f = xmalloc((size_t)n * sizeof(float));
        int32_t *off = xmalloc(sizeof(int32_t) * (size_t)(n_tok * nb));
        float *xd = xmalloc(sizeof(float) * (size_t)(n_tok * nb));
        float *y_row = xmalloc(sizeof(float) * (size_t)(n_tok * n_out)), *y_a7 = xmalloc(sizeof(float) * (size_t)(n_tok * n_out));
        for (int64_t r = 0; r < n_out; r++) {
            for (int64_t i = 0; i < n; i++) f[i] = rnd_normal() * 0.05f;
            ckls_quantize_q8_0_ref(f, w + r * rb, n);
            if (raw)
                for (int64_t i = 0; i < nb; i++) {
                    block_q8_0 *q = (block_q8_0 *)(w + r * rb) + i;
                    for (int e = 0; e < QK8_0; e++) q->qs[e] = (int8_t)(rnd() & 0xff);
                }
        }
        for (int64_t t = 0; t < n_tok; t++) {
            for (int64_t i = 0; i < n; i++) f[i] = rnd_normal() * (t == 2 ? 1e-3f : 1.0f);
            k->quantize_a7(f, xq + t * xs, n, NULL, NULL);
            if (raw && t % 2)
                for (int64_t i = 0; i < nb; i++) {
                    block_q8_0 *q = (block_q8_0 *)(xq + t * xs) + i;
                    for (int e = 0; e < QK8_0; e++) q->qs[e] = (int8_t)(rnd_int(0, 3) == 0 ? (rnd() & 1 ? 63 : -64) : rnd_int(-64, 63));
                }
        }
        ckls_q8_0_a7_terms(xq, xs, n, n_tok, off, xd);
        int64_t bytes;
        char *packed = ckls_repack_matrix(NULL, CKLS_TYPE_Q8_0, w, n_out, n, &bytes);
        CHECK(packed && bytes > 0, "%s repack q8_0", ckls_isa_name(isa));
        const int64_t gb = bytes / groups;
        for (int64_t g = 0; packed && g < groups; g++)
            for (int nt = 1; nt <= 4 && nt <= n_tok; nt++) {
                float s_isa[4 * 11], s_ref[4 * 11];
                k->gemm_x8_a7(n, s_isa, 11, packed + g * gb, xq, xs, off, xd, nt);
                ckls_gemm_q8_0x8_ref(n, s_ref, 11, packed + g * gb, xq, xs, NULL, nt);
                for (int t = 0; t < nt; t++)
                    for (int r = 0; r < 8; r++)
                        CHECK(s_isa[t * 11 + r] == s_ref[t * 11 + r], "%s gemm_x8_a7 n=%lld%s nt=%d row %d tok %d: %.9g vs ref %.9g",
                              ckls_isa_name(isa), (long long)n, raw ? " raw" : "", nt, r, t, s_isa[t * 11 + r], s_ref[t * 11 + r]);
            }
        if (!raw) { /* the row dots take no -128 weight (dot_i8's sign trick): quantized weights only */
            CHECK(ckls_matmul_pre(NULL, CKLS_TYPE_Q8_0, w, n_out, n, xq, xs, n_tok, y_row, n_out, NULL) == CKLS_OK, "matmul_pre");
            CHECK(ckls_matmul_packed_a7(NULL, CKLS_TYPE_Q8_0, w, packed, n_out, n, xq, xs, n_tok, y_a7, n_out, NULL) == CKLS_OK,
                  "matmul_packed_a7");
            for (int64_t i = 0; i < n_tok * n_out; i++)
                CHECK(y_a7[i] == y_row[i], "%s matmul_packed_a7 %lld x %lld, %lld tokens: out %lld %.9g, rows %.9g",
                      ckls_isa_name(isa), (long long)n_out, (long long)n, (long long)n_tok, (long long)i, y_a7[i], y_row[i]);
            check_epilogue(isa, w, packed, n_out, n, xq, xs, n_tok, y_a7, &(ckls_a7_terms){off, xd});
        }
        ckls_aligned_free(packed);
        free(w);
        free(xq);
        free(f);
        free(off);
        free(xd);
        free(y_row);
        free(y_a7);
    }
    ckls_set_isa(was);
}

/* Attention over the block-transposed K cache (attn_kt) against the scalar reference: odd head dims, group
 * sizes 1..7, 1..9 tokens, one to a few hundred positions, V rows at a padded stride; and each row bit for bit
 * the same when its token comes alone (a drafted token verified in a batch must equal it evaluated alone). */
static void test_attn_kt(int isa, const ckls_isa_kernels *k, const ckls_isa_kernels *ref) {
    if (!k->attn_kt || k->attn_kt == ref->attn_kt) return;
    static const int DIMS[] = {1, 7, 16, 32, 48, 64, 67, 128, 144};
    static const int NKV[] = {1, 2, 9, 16, 17, 64, 333};
    for (size_t di = 0; di < sizeof DIMS / sizeof DIMS[0]; di++)
        for (size_t ni = 0; ni < sizeof NKV / sizeof NKV[0]; ni++) {
            const int64_t d = DIMS[di], n_kv = NKV[ni], g = rnd_int(1, 7), nt = rnd_int(1, 9);
            const int64_t n = n_kv + nt - 1, q_stride = g * d + rnd_int(0, 5) * d, v_stride = d + rnd_int(0, 9);
            const size_t qn = (size_t)((nt - 1) * q_stride + g * d), scn = (size_t)(nt * g * (n + 16 + nt));
            float *q = xmalloc(qn * sizeof(float)), *kr = xmalloc((size_t)(n * d) * sizeof(float));
            float *kt = xmalloc((size_t)ckls_kt_head_floats(n, d) * sizeof(float));
            float *vv = xmalloc((size_t)((n - 1) * v_stride + d) * sizeof(float));
            float *sc = xmalloc(scn * sizeof(float)), *o = xmalloc(qn * sizeof(float)), *o2 = xmalloc(qn * sizeof(float));
            float *o1 = xmalloc(qn * sizeof(float));
            for (size_t i = 0; i < qn; i++) q[i] = rnd_normal();
            for (int64_t i = 0; i < n * d; i++) kr[i] = rnd_normal();
            for (int64_t i = 0; i < (n - 1) * v_stride + d; i++) vv[i] = rnd_normal();
            for (int64_t i = 0; i < ckls_kt_head_floats(n, d); i++) kt[i] = NAN; /* the unused lanes: ignored */
            ckls_kt_store(kt, n, 1, d, kr, d, n, 0);
            const float scale = 1.0f / sqrtf((float)d);
            k->attn_kt(q, q_stride, nt, g, kt, vv, v_stride, n_kv, d, scale, sc, o);
            ref->attn_kt(q, q_stride, nt, g, kt, vv, v_stride, n_kv, d, scale, sc, o2);
            for (int64_t t = 0; t < nt; t++) /* each token alone */
                k->attn_kt(q + t * q_stride, q_stride, 1, g, kt, vv, v_stride, n_kv + t, d, scale, sc,
                           o1 + t * q_stride);
            double err = 0, mag = 0;
            int same = 1;
            for (int64_t t = 0; t < nt; t++)
                for (int64_t i = t * q_stride; i < t * q_stride + g * d; i++) {
                    const double e = fabs((double)o[i] - o2[i]), m = fabs((double)o2[i]);
                    if (e > err || e != e) err = e;
                    if (m > mag) mag = m;
                    same &= memcmp(&o[i], &o1[i], sizeof(float)) == 0;
                }
            CHECK(err <= 2e-6 * (mag + 1.0), "%s attn_kt d=%lld n_kv=%lld g=%lld nt=%lld: max err %.3g (|out| %.3g)",
                  ckls_isa_name(isa), (long long)d, (long long)n_kv, (long long)g, (long long)nt, err, mag);
            CHECK(same, "%s attn_kt d=%lld n_kv=%lld g=%lld nt=%lld: a token alone differs from it in the batch",
                  ckls_isa_name(isa), (long long)d, (long long)n_kv, (long long)g, (long long)nt);
            free(q);
            free(kr);
            free(kt);
            free(vv);
            free(sc);
            free(o);
            free(o1);
            free(o2);
        }
}

/* ---- quantize / dequantize round trips (scalar reference quantizers) ---------------------------------------- */
static double rel_rmse(const float *a, const float *b, int64_t n) {
    double e = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        e += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        s += (double)a[i] * a[i];
    }
    return s > 0 ? sqrt(e / s) : sqrt(e);
}

static void test_round_trips(void) {
    const struct { int type; double bound; } cases[] = {
        {CKLS_TYPE_F16, 1e-3}, {CKLS_TYPE_BF16, 5e-3}, {CKLS_TYPE_Q8_0, 0.01}, {CKLS_TYPE_Q4_0, 0.13},
        {CKLS_TYPE_Q4_K, 0.085}, {CKLS_TYPE_Q6_K, 0.022}, {CKLS_TYPE_Q8_K, 0.01},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const int type = cases[ci].type;
        const ckls_type_info *ti = ckls_type_get(type);
        const int64_t n = ti->blck == 1 ? 1031 : ti->blck * 29;
        float *x = xmalloc((size_t)n * sizeof(float)), *y = xmalloc((size_t)n * sizeof(float));
        void *q = xmalloc((size_t)row_bytes(type, n));
        for (int64_t i = 0; i < n; i++) x[i] = rnd_normal() * 0.02f;
        ti->from_float_ref(x, q, n);
        ti->to_float(q, y, n);
        const double r = rel_rmse(x, y, n);
        CHECK(r <= cases[ci].bound, "round trip %s: relative rmse %.4f > %.4f", ti->name, r, cases[ci].bound);
        /* zeros stay zeros; nothing non-finite appears from finite input */
        int finite = 1;
        for (int64_t i = 0; i < n; i++) finite &= isfinite(y[i]) != 0;
        CHECK(finite, "round trip %s: non-finite output", ti->name);
        memset(x, 0, (size_t)n * sizeof(float));
        ti->from_float_ref(x, q, n);
        ti->to_float(q, y, n);
        int zero = 1;
        for (int64_t i = 0; i < n; i++) zero &= y[i] == 0.0f;
        CHECK(zero, "round trip %s: zeros do not stay zero", ti->name);
        free(x);
        free(y);
        free(q);
    }
    /* NaN / Inf / huge / denormal input: the quantizers must not crash or trip the sanitizers (values are
     * garbage in, garbage out), and finite blocks next to them stay accurate */
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const int type = cases[ci].type;
        const ckls_type_info *ti = ckls_type_get(type);
        const int64_t blck = ti->blck == 1 ? 32 : ti->blck, n = blck * 8;
        float *x = xmalloc((size_t)n * sizeof(float)), *y = xmalloc((size_t)n * sizeof(float));
        void *q = xmalloc((size_t)row_bytes(type, n));
        for (int rep = 0; rep < 8; rep++) {
            fill(x, n, (int)blck, FAM_SPECIAL);
            for (int64_t i = 0; i < blck; i++) x[i] = rnd_normal(); /* block 0 stays ordinary */
            x[blck + rnd_int(0, (int)blck - 1)] = rep & 1 ? 3e38f : -3e38f;
            ti->from_float_ref(x, q, n);
            ti->to_float(q, y, n);
            CHECK(rel_rmse(x, y, blck) <= cases[ci].bound * 1.5, "%s: ordinary block next to special ones", ti->name);
            if (type == CKLS_TYPE_Q4_K) ckls_quantize_q4_K_imatrix(x, q, n, x);
            if (type == CKLS_TYPE_Q6_K) ckls_quantize_q6_K_imatrix(x, q, n, x);
        }
        free(x);
        free(y);
        free(q);
    }

    /* importance-weighted K-quants: with a flat importance they are as good as plain; a weight on a few columns
     * makes those columns more accurate */
    const int types[2] = {CKLS_TYPE_Q4_K, CKLS_TYPE_Q6_K};
    for (int t = 0; t < 2; t++) {
        const int type = types[t];
        const int64_t n = QK_K * 16;
        float *x = xmalloc(n * sizeof(float)), *y = xmalloc(n * sizeof(float)), *im = xmalloc(n * sizeof(float));
        void *q = xmalloc((size_t)row_bytes(type, n));
        for (int64_t i = 0; i < n; i++) {
            x[i] = rnd_normal();
            im[i] = (i % 8 == 0) ? 100.0f : 1.0f;
        }
        double err_plain = 0, err_imp = 0;
        ckls_type_get(type)->from_float_ref(x, q, n);
        ckls_type_get(type)->to_float(q, y, n);
        for (int64_t i = 0; i < n; i += 8) err_plain += (x[i] - y[i]) * (double)(x[i] - y[i]);
        if (type == CKLS_TYPE_Q4_K) ckls_quantize_q4_K_imatrix(x, q, n, im);
        else ckls_quantize_q6_K_imatrix(x, q, n, im);
        ckls_type_get(type)->to_float(q, y, n);
        for (int64_t i = 0; i < n; i += 8) err_imp += (x[i] - y[i]) * (double)(x[i] - y[i]);
        CHECK(err_imp < err_plain, "%s imatrix: important columns not better (%.4g vs %.4g)", ckls_type_get(type)->name,
              err_imp, err_plain);
        free(x);
        free(y);
        free(im);
        free(q);
    }
}

int main(int argc, char **argv) {
    test_seed(argc, argv, "test_kernels");

    const ckls_isa_kernels *ref = ckls_isa_table(CKLS_ISA_SCALAR);
    test_round_trips();
    int tested = 0;
    for (int isa = 1; isa < CKLS_ISA_COUNT; isa++) {
        if (!ckls_isa_available(isa)) {
            printf("skip %s: not available in this build/CPU\n", ckls_isa_name(isa));
            continue;
        }
        printf("testing %s\n", ckls_isa_name(isa));
        const ckls_isa_kernels *k = ckls_isa_table(isa);
        test_quantize_act(isa, k, ref);
        test_quantize_a7(isa, k);
        test_dots(isa, k, ref);
        test_dots_4r(isa, k, ref);
        test_dots_4c(isa, k, ref);
        test_gemm_x8(isa, k);
        test_gemm_tiles(isa, k);
        test_gemm_x8_a7(isa, k);
        test_matmul_packed_q8_0(isa, k);
        test_attn_kt(isa, k, ref);
        tested++;
    }
    if (!tested) { /* still check the references against double */
        printf("no SIMD ISA here: checking the scalar references only\n");
        test_dots(CKLS_ISA_SCALAR, ref, ref);
    }
    test_dots_4r(CKLS_ISA_SCALAR, ref, ref); /* the 1-row fallback */
    { /* the scalar references of the 8-row kernels against the row dots */
        ckls_isa_kernels with_ref = *ref;
        with_ref.gemm_x8[CKLS_TYPE_Q4_0] = ckls_gemm_q4_0x8_ref;
        with_ref.gemm_x8[CKLS_TYPE_Q4_K] = ckls_gemm_q4_Kx8_ref;
        with_ref.gemm_x8[CKLS_TYPE_Q8_0] = ckls_gemm_q8_0x8_ref;
        with_ref.gemm_x8[CKLS_TYPE_Q6_K] = ckls_gemm_q6_Kx8_ref;
        test_gemm_x8(CKLS_ISA_SCALAR, &with_ref);
    }
    return test_report();
}
