/* internal.h — what the native files share and the outside never sees: block layouts, per-type kernel
 * tables, half-float conversion, error reporting. */
#ifndef CKLS_INTERNAL_H
#define CKLS_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include "../include/ckls.h"

/* ---- errors ---------------------------------------------------------------------------------------------- */
/* Records a printf-style message for ckls_last_error() and returns `code`. */
int ckls_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- half floats ----------------------------------------------------------------------------------------- */
typedef uint16_t ckls_f16;
typedef uint16_t ckls_bf16;

float ckls_f16_to_f32(ckls_f16 h);
ckls_f16 ckls_f32_to_f16(float f);   /* round to nearest even, like F16C's _cvtss_sh(x, 0) */
static inline float ckls_bf16_to_f32(ckls_bf16 h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
ckls_bf16 ckls_f32_to_bf16(float f); /* round to nearest even; NaN stays NaN */

/* ---- block layouts (byte-identical to ggml) --------------------------------------------------------------- */
#define QK8_0 32
#define QK4_0 32
#define QK_K 256
#define K_SCALE_SIZE 12

typedef struct { ckls_f16 d; int8_t qs[QK8_0]; } block_q8_0;                  /* 34 B */
typedef struct { ckls_f16 d; uint8_t qs[QK4_0 / 2]; } block_q4_0;            /* 18 B */
typedef struct { ckls_f16 d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qs[QK_K / 2]; } block_q4_K; /* 144 B */
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; ckls_f16 d; } block_q6_K; /* 210 B */
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } block_q8_K; /* 292 B */

_Static_assert(sizeof(block_q8_0) == 34, "q8_0 layout");
_Static_assert(sizeof(block_q4_0) == 18, "q4_0 layout");
_Static_assert(sizeof(block_q4_K) == 144, "q4_K layout");
_Static_assert(sizeof(block_q6_K) == 210, "q6_K layout");
_Static_assert(sizeof(block_q8_K) == 292, "q8_K layout");

/* Interleaved 8-row layouts, made at load (repack.c) in the runtime's own memory so one pass over a token's
 * activations feeds 8 rows and every row's partial sum stays in its own vector lane (no horizontal adds).
 * Block i of a group holds block i of its 8 rows; the 4-byte groups of the rows' quant bytes alternate:
 *   Q4_0: qs[32 m + 4 r + b] = row r's qs[4 m + b]                    (m < 4: elements 4m.., 16+4m..)
 *   Q4_K: qs[32 (8 c + m) + 4 r + b] = row r's qs[32 c + 4 m + b]     (c < 4 chunks of 64, m < 8)
 *   Q8_0: qs[32 m + 4 r + b] = row r's qs[4 m + b]                    (m < 8)
 * Q4_K's 6-bit scales and mins are unpacked to bytes: scales[j][r], mins[j / 2][r][j % 2] for sub-block j.
 *   Q6_K: ql[32 (8 c + m) + 4 r + b] = row r's ql[32 c + 4 m + b]    (c < 4: half c / 2, 32-byte run c % 2)
 *         qh[32 (8 h + m) + 4 r + b] = row r's qh[32 h + 4 m + b]    (h < 2 halves of 128)
 *         scales[j][r] = row r's scales[j]                           (j < 16 sub-blocks of 16)
 *   i.e. Q6_K keeps its own pairing of nibbles and high bits (ckls_q6k_level), only the rows interleaved. */
#define CKLS_PACK_ROWS 8
typedef struct { ckls_f16 d[8]; uint8_t qs[8 * QK4_0 / 2]; } block_q4_0x8;                        /* 144 B */
typedef struct { ckls_f16 d[8]; int8_t qs[8 * QK8_0]; } block_q8_0x8;                              /* 272 B */
typedef struct {
    ckls_f16 d[8], dmin[8];
    uint8_t scales[8][8];
    uint8_t mins[4][8][2];
    uint8_t qs[8 * QK_K / 2];
} block_q4_Kx8;                                                                                   /* 1184 B */
typedef struct {
    ckls_f16 d[8];
    int8_t scales[16][8];
    uint8_t ql[8 * QK_K / 2];
    uint8_t qh[8 * QK_K / 4];
} block_q6_Kx8;                                                                                   /* 1680 B */
_Static_assert(sizeof(block_q6_Kx8) == 1680, "q6_Kx8 layout");
_Static_assert(sizeof(block_q4_0x8) == 144, "q4_0x8 layout");
_Static_assert(sizeof(block_q4_Kx8) == 1184, "q4_Kx8 layout");
_Static_assert(sizeof(block_q8_0x8) == 272, "q8_0x8 layout");

/* ---- per-type kernel tables -------------------------------------------------------------------------------- */
/* n is always a multiple of the type's block size; callers check. */
typedef void (*ckls_to_float_fn)(const void *x, float *y, int64_t n);
typedef void (*ckls_from_float_fn)(const float *x, void *y, int64_t n);
typedef void (*ckls_vec_dot_fn)(int64_t n, float *s, const void *w, const void *xq);

typedef struct {
    const char *name;
    int64_t blck;               /* elements per block */
    int64_t size;               /* bytes per block */
    int vec_dot_type;           /* activation format for dots */
    ckls_to_float_fn to_float;  /* scalar dequantize */
    ckls_from_float_fn from_float_ref; /* scalar quantize (reference) */
} ckls_type_info;

/* NULL for unsupported types. */
const ckls_type_info *ckls_type_get(int type);

/* Kernels one ISA provides. A NULL entry means "use the scalar one". Indexed by type id (< CKLS_TYPE_MAX). */
#define CKLS_TYPE_MAX 31
/* Dots of 4 weight rows (at w, w + w_stride, ... bytes) with one activation row into s[0..3]: the activation
 * is loaded once for all four rows. Optional per type; ckls_vec_dot_4r() below falls back to vec_dot. */
typedef void (*ckls_vec_dot_4r_fn)(int64_t n, float *s, const void *w, int64_t w_stride, const void *xq);

/* The f32 kernels of training (and of the loss and attention rows). */
/* C[m x n] (=|+=) alpha * A.B for one tile: A(i, k) at A[i * a_si + k * a_sk], B row-major (row stride ldb).
 * accumulate 0: C is overwritten. */
typedef void (*ckls_gemm_tile_fn)(int64_t m, int64_t n, int64_t k, float alpha, const float *A, int64_t a_si,
                                  int64_t a_sk, const float *B, int64_t ldb, int accumulate, float *C, int64_t ldc);

/* C[m x n] (=|+=) alpha * A.W^T, A and W row-major along k (lda, ldw floats a row): dots of A's rows with W's, for
 * a narrow n (LoRA's rank) where the tile above would sweep B's rows a few floats wide. */
typedef void (*ckls_gemm_nt_fn)(int64_t m, int64_t n, int64_t k, float alpha, const float *A, int64_t lda,
                                const float *W, int64_t ldw, int accumulate, float *C, int64_t ldc);

/* y[i] = exp(x[i] - shift) for n floats (y may be x); returns their sum. Softmax rows and the loss: a polynomial
 * exp (within ~1e-7 of libm's, 0 below exp(-86.9), clamped at exp(88)) instead of libm's expf one element at a time. */
typedef double (*ckls_exp_shift_fn)(float *y, const float *x, int64_t n, float shift);

/* dst[j * ldd + i] = src[i * lds + j] for i < rows, j < cols: weight panels laid out for the tile's B operand. */
typedef void (*ckls_transpose_fn)(const float *src, int64_t rows, int64_t cols, int64_t lds, float *dst, int64_t ldd);

/* One attention row over its n >= 1 keys, in place: p holds the scaled scores and gets the probabilities; returns
 * their log-sum-exp (the backward recomputes p from it, a block at a time, with exp_shift). */
typedef float (*ckls_softmax_fn)(float *p, int64_t n);

/* bf16 products (the integer mode's attention and vocabulary dX, where the CPU has AVX512-BF16): operands are bf16
 * pairs in uint32 (low half first). C[m x n] (=|+=) alpha * A.B over k = 2 kp: pair p of A's row i at
 * A[i * a_si + p * a_sp], B's row pair p at B + p * ldb (n pairs: rows 2p and 2p + 1 of column j), f32 sums. */
typedef void (*ckls_gemm_tile_bf16_fn)(int64_t m, int64_t n, int64_t kp, float alpha, const uint32_t *A, int64_t a_si,
                                       int64_t a_sp, const uint32_t *B, int64_t ldb, int accumulate, float *C,
                                       int64_t ldc);
/* f32 -> bf16 pairs (round to nearest even, denormals to zero), an odd tail paired with zero. rows: pairs along a
 * row, y[i * ldy + p] = (x[i][2p], x[i][2p + 1]) (a tile's A, k along the row); pairs: down a column,
 * y[p * ldy + j] = (x[2p][j], x[2p + 1][j]) (a tile's B, k down the rows). */
typedef void (*ckls_bf16_conv_fn)(const float *x, int64_t rows, int64_t cols, int64_t ldx, uint32_t *y, int64_t ldy);

/* int16 products (the integer mode's vocabulary dX where there are no bf16 products: gemm_i16.c): values within
 * +-CKLS_I16_MAX, a float scale per CKLS_I16_BLOCK, int32 block sums exact. quantize_i16: x (n floats) into q
 * (n rounded up to a block, zeros past n) and d (a scale a block). */
#define CKLS_I16_BLOCK 32
#define CKLS_I16_MAX 8191
typedef void (*ckls_quantize_i16_fn)(const float *x, int16_t *q, int64_t n, float *d);
/* 32 rows (k) x 8 columns of a matrix: q[p][2c + e] = row 2p + e of column c (madd's pairs), d[c] column c's scale */
typedef struct {
    int16_t q[CKLS_I16_BLOCK / 2][16];
    float d[8];
} block_i16x8;
/* c[t * ldc + j] (=|+=) over nb blocks, for t < nt (1..4) and j < 16 (columns of the group at w, then of the group
 * at w + ws blocks): sum_b (a's block b of token t . column j's block b) * sa[t * ldsa + b] * d, the dot in int32,
 * token t's values a + t * lda */
typedef void (*ckls_gemm_i16x8_fn)(int64_t nb, const int16_t *a, int64_t lda, const float *sa, int64_t ldsa,
                                   const block_i16x8 *w, int64_t ws, float *c, int64_t ldc, int nt, int accumulate);

typedef struct {
    ckls_from_float_fn quantize_act[CKLS_TYPE_MAX]; /* indexed by activation type (Q8_0, Q8_K, F16 ...) */
    ckls_vec_dot_fn vec_dot[CKLS_TYPE_MAX];         /* indexed by weight type */
    ckls_vec_dot_4r_fn vec_dot_4r[CKLS_TYPE_MAX];   /* indexed by weight type; NULL = 4 x vec_dot */
    /* s[t] = one weight row dotted with 4 activation rows (x_stride bytes apart): for prompt processing, where
     * unpacking the weights once for several tokens pays. Bit-identical to ckls_vec_dot_4r() on the same row,
     * which matmul uses for the same full row blocks on the one-token path. NULL = absent. */
    void (*vec_dot_4c[CKLS_TYPE_MAX])(int64_t n, float *s, const void *w, const void *xq, int64_t x_stride);
    /* s[t * 4 + r] = 4 weight rows (w_stride bytes apart) dotted with 4 activation rows (x_stride apart): the
     * register tile of prompt processing. Bit-identical to ckls_vec_dot_4r() per token. NULL = absent. */
    void (*vec_dot_4x4[CKLS_TYPE_MAX])(int64_t n, float *s, const void *w, int64_t w_stride, const void *xq,
                                       int64_t x_stride);
    /* Over a repacked 8-row group w (block_q4_0x8 / block_q4_Kx8 / block_q8_0x8 / block_q6_Kx8): s[t * s_stride + r] = row r dotted with
     * activation row t (x_stride bytes apart) for r < 8, t < nt (1..4). aux: Q4_0's and Q8_0's per-token
     * activation block sums (n / 32 int16 per token, ckls_q8_0_block_sums), NULL otherwise. One token or four, every (row,
     * token) lane runs the same arithmetic, so prompt and decode outputs are bit-identical. NULL = absent. */
    void (*gemm_x8[CKLS_TYPE_MAX])(int64_t n, float *s, int64_t s_stride, const void *w, const void *xq,
                                   int64_t x_stride, const int16_t *aux, int nt);
    /* The fine-tuner's Q8_0 products against 7-bit activations (quantize_a7, |q| <= 64), where they outrun gemm_x8
     * (AVX2: no sign ops): gemm_x8's, with each token's block terms (ckls_q8_0_a7_terms: off, xd at t * n / 32)
     * for aux; per lane ckls_gemm_q8_0x8_ref, bit for bit. It goes with the table's own Q8_0 gemm_x8: a child ISA
     * with its own (VNNI, no sign ops to save) drops it. NULL = absent. quantize_a7: never NULL once resolved. */
    void (*gemm_x8_a7)(int64_t n, float *s, int64_t s_stride, const void *w, const void *xq, int64_t x_stride,
                       const int32_t *off, const float *xd, int nt);
    void (*quantize_a7)(const float *x, void *y, int64_t n, int32_t *off, float *d); /* ckls_quantize_q8_0_a7_ref */
    /* 1 where this ISA's gemm_x8 / gemm_x16 of the type read aux (the activation block sums): Q4_0 everywhere,
     * Q8_0 with VNNI; matmul computes the sums only then. */
    uint8_t gemm_aux[CKLS_TYPE_MAX];
    /* gemm_x8 over two adjacent groups at once, w and w + w_stride bytes (16 rows: s[t * s_stride + r], r < 16),
     * for 512-bit registers, and nt = 1..8 tokens; per (row, token) the arithmetic of gemm_x8, bit for bit.
     * NULL = absent. */
    void (*gemm_x16[CKLS_TYPE_MAX])(int64_t n, float *s, int64_t s_stride, const void *w, int64_t w_stride,
                                    const void *xq, int64_t x_stride, const int16_t *aux, int nt);
    /* On matrix tiles (AMX), many rows and tokens per call: n_tiles x 16 rows of the matrix as it is in the file
     * (w, rows w_row_bytes apart; tile p's outputs at s + 16 p) x nt tokens (a multiple of 16), the activations
     * laid out by ckls_q8_0_tiles_pack (xb, xd). Rows of at most CKLS_TILES_MAX_BLOCKS blocks. Per (row, token)
     * the arithmetic of gemm_x8, bit for bit. NULL = absent. */
    void (*gemm_tiles[CKLS_TYPE_MAX])(int64_t n, float *s, int64_t s_stride, const void *w, int64_t w_row_bytes,
                                      int64_t n_tiles, const int8_t *xb, const float *xd, int64_t nt);
    /* Causal attention of nt consecutive tokens' query heads that share one KV head: token t's g heads (adjacent,
     * d floats each, at q + t * q_stride) over the first n_kv + t cached positions, K in the block layout of
     * attn_kt.c (kt: this head's blocks), V rows v_stride floats apart: out (laid out like q) = softmax(q·k *
     * scale) · v. scores: scratch of at least nt * g * (n_kv + nt + 15) floats. Every row is computed with the
     * same arithmetic whatever nt and g (a token verified with a draft equals it evaluated alone). */
    void (*attn_kt)(const float *q, int64_t q_stride, int64_t nt, int64_t g, const float *kt, const float *v,
                    int64_t v_stride, int64_t n_kv, int64_t d, float scale, float *scores, float *out);
    /* training: the f32 GEMM tile and row dots, the panel transpose, the exp and softmax rows (never NULL once
     * resolved) */
    ckls_gemm_tile_fn gemm_tile;
    ckls_gemm_nt_fn gemm_nt;
    ckls_transpose_fn transpose;
    ckls_exp_shift_fn exp_shift;
    ckls_softmax_fn softmax;
    /* the bf16 products: NULL where the CPU (or the build) has no AVX512-BF16 */
    ckls_gemm_tile_bf16_fn gemm_tile_bf16;
    /* 1 where gemm_tile_bf16 runs on matrix tiles (AMX-BF16): there bf16 products outrun the integer kernels, whose
     * Q8_0 blocks need float work every 32 multiply-adds, so the fine-tuner takes them for the frozen weights too */
    uint8_t bf16_tiles;
    ckls_bf16_conv_fn bf16_rows, bf16_pairs;
    /* the int16 products: NULL where no SIMD version exists (the scalar reference would lose to the f32 tile) */
    ckls_quantize_i16_fn quantize_i16;
    ckls_gemm_i16x8_fn gemm_i16x8;
} ckls_isa_kernels;

/* the kernels of the training fields: scalar references */
void ckls_quantize_i16_ref(const float *x, int16_t *q, int64_t n, float *d);
void ckls_gemm_i16x8_ref(int64_t nb, const int16_t *a, int64_t lda, const float *sa, int64_t ldsa,
                         const block_i16x8 *w, int64_t ws, float *c, int64_t ldc, int nt, int accumulate);
void ckls_gemm_tile_ref(int64_t m, int64_t n, int64_t k, float alpha, const float *A, int64_t a_si, int64_t a_sk,
                        const float *B, int64_t ldb, int accumulate, float *C, int64_t ldc);
void ckls_gemm_nt_ref(int64_t m, int64_t n, int64_t k, float alpha, const float *A, int64_t lda, const float *W,
                      int64_t ldw, int accumulate, float *C, int64_t ldc);
double ckls_exp_shift_ref(float *y, const float *x, int64_t n, float shift);
void ckls_transpose_ref(const float *src, int64_t rows, int64_t cols, int64_t lds, float *dst, int64_t ldd);
float ckls_softmax_ref(float *p, int64_t n);
void ckls_gemm_tile_bf16_ref(int64_t m, int64_t n, int64_t kp, float alpha, const uint32_t *A, int64_t a_si,
                             int64_t a_sp, const uint32_t *B, int64_t ldb, int accumulate, float *C, int64_t ldc);
void ckls_bf16_rows_ref(const float *x, int64_t rows, int64_t cols, int64_t ldx, uint32_t *y, int64_t ldy);
void ckls_bf16_pairs_ref(const float *x, int64_t rows, int64_t cols, int64_t ldx, uint32_t *y, int64_t ldy);
void ckls_gemm_tile_bf16_avx512bf16(int64_t m, int64_t n, int64_t kp, float alpha, const uint32_t *A, int64_t a_si,
                                    int64_t a_sp, const uint32_t *B, int64_t ldb, int accumulate, float *C,
                                    int64_t ldc);
void ckls_bf16_rows_avx512bf16(const float *x, int64_t rows, int64_t cols, int64_t ldx, uint32_t *y, int64_t ldy);
void ckls_bf16_pairs_avx512bf16(const float *x, int64_t rows, int64_t cols, int64_t ldx, uint32_t *y, int64_t ldy);
void ckls_gemm_tile_bf16_amx(int64_t m, int64_t n, int64_t kp, float alpha, const uint32_t *A, int64_t a_si,
                             int64_t a_sp, const uint32_t *B, int64_t ldb, int accumulate, float *C, int64_t ldc);
/* their ISA versions (gemm_tile{,_avx2,_avx512}.c, softmax_row{,_avx2}.c) */
void ckls_gemm_tile_avx2(int64_t m, int64_t n, int64_t k, float alpha, const float *A, int64_t a_si, int64_t a_sk,
                         const float *B, int64_t ldb, int accumulate, float *C, int64_t ldc);
void ckls_gemm_tile_avx512(int64_t m, int64_t n, int64_t k, float alpha, const float *A, int64_t a_si, int64_t a_sk,
                           const float *B, int64_t ldb, int accumulate, float *C, int64_t ldc);
void ckls_gemm_nt_avx2(int64_t m, int64_t n, int64_t k, float alpha, const float *A, int64_t lda, const float *W,
                       int64_t ldw, int accumulate, float *C, int64_t ldc);
void ckls_transpose_avx2(const float *src, int64_t rows, int64_t cols, int64_t lds, float *dst, int64_t ldd);
double ckls_exp_shift_avx2(float *y, const float *x, int64_t n, float shift);
void ckls_quantize_i16_avx2(const float *x, int16_t *q, int64_t n, float *d);
void ckls_gemm_i16x8_avx2(int64_t nb, const int16_t *a, int64_t lda, const float *sa, int64_t ldsa,
                          const block_i16x8 *w, int64_t ws, float *c, int64_t ldc, int nt, int accumulate);
void ckls_gemm_i16x8_avxvnni(int64_t nb, const int16_t *a, int64_t lda, const float *sa, int64_t ldsa,
                             const block_i16x8 *w, int64_t ws, float *c, int64_t ldc, int nt, int accumulate);
void ckls_gemm_i16x8_avx512vnni(int64_t nb, const int16_t *a, int64_t lda, const float *sa, int64_t ldsa,
                                const block_i16x8 *w, int64_t ws, float *c, int64_t ldc, int nt, int accumulate);
float ckls_softmax_avx2(float *p, int64_t n);
/* The polynomial exp they compute (softmax_row.c's exp_poly; simd_avx2.h and attn_kt_avx512.c lane-wise, the same
 * FMAs): k = round(x / ln 2) by the 1.5 * 2^23 shifter, one FMA that leaves k in the low mantissa bits;
 * r = x - k ln 2 in two steps (Cody-Waite, |r| <= ln 2 / 2); e^r = 1 + r (1 + r (C2 + r (C3 + ... + r C6))),
 * degree 6 fitted for relative error (within an ulp of e^r in float arithmetic); then k added into the exponent
 * bits, which stay normal from CKLS_EXP_LO to CKLS_EXP_HI. */
#define CKLS_EXP_LO -86.9f /* below: 0 (2^k would leave the normal range) */
#define CKLS_EXP_HI 88.0f  /* above: clamped */
#define CKLS_EXP_LOG2E 1.44269504088896341f
#define CKLS_EXP_SHIFTER 12582912.0f /* 1.5 * 2^23 */
#define CKLS_EXP_LN2_HI -0.693359375f
#define CKLS_EXP_LN2_LO 2.12194440e-4f
#define CKLS_EXP_C2 4.999999404e-01f
#define CKLS_EXP_C3 1.666652113e-01f
#define CKLS_EXP_C4 4.166838899e-02f
#define CKLS_EXP_C5 8.368745446e-03f
#define CKLS_EXP_C6 1.381453942e-03f

/* attention over the block-transposed K cache: attn_kt.c (layout, scalar reference), attn_kt_{avx2,avx512}.c */
#define CKLS_KT_BLOCK 16
/* floats one KV head's K takes for n_ctx positions */
static inline int64_t ckls_kt_head_floats(int64_t n_ctx, int64_t d) {
    return (n_ctx + CKLS_KT_BLOCK - 1) / CKLS_KT_BLOCK * CKLS_KT_BLOCK * d;
}
/* rows of K (n tokens from position pos0; n_head_kv heads of d floats, rows k_stride apart) into the layout */
void ckls_kt_store(float *kt, int64_t n_ctx, int64_t n_head_kv, int64_t d, const float *k, int64_t k_stride,
                   int64_t n, int64_t pos0);
/* ckls_attention over a K cache in that layout (n_ctx: the positions it was laid out for) */
int ckls_attention_kt(ckls_pool *pool, const float *q, const float *kt, int64_t n_ctx, const float *v, float *out,
                      int64_t n_tok, int64_t pos0, int64_t n_head, int64_t n_head_kv, int64_t head_dim,
                      int64_t v_stride);
void ckls_attn_kt_ref(const float *q, int64_t q_stride, int64_t nt, int64_t g, const float *kt, const float *v,
                      int64_t v_stride, int64_t n_kv, int64_t d, float scale, float *scores, float *out);
/* one tile of R rows (4 or 1) of the SIMD kernels, sorted by n: q[r], o[r], scratch sc[r], n[r] positions */
typedef void (*ckls_attn_tile_fn)(const float *const *q, float *const *o, float *const *sc, const int64_t *n,
                                  const float *kt, const float *v, int64_t v_stride, int64_t d, float scale);
void ckls_attn_kt_tiles(ckls_attn_tile_fn tile4, ckls_attn_tile_fn tile1, const float *q, int64_t q_stride,
                        int64_t nt, int64_t g, const float *kt, const float *v, int64_t v_stride, int64_t n_kv,
                        int64_t d, float scale, float *scores, float *out);
void ckls_attn_kt_avx2(const float *q, int64_t q_stride, int64_t nt, int64_t g, const float *kt, const float *v,
                       int64_t v_stride, int64_t n_kv, int64_t d, float scale, float *scores, float *out);
void ckls_attn_kt_avx512(const float *q, int64_t q_stride, int64_t nt, int64_t g, const float *kt, const float *v,
                         int64_t v_stride, int64_t n_kv, int64_t d, float scale, float *scores, float *out);

/* s[r] = row r of the 4 at w (w_stride bytes apart) dotted with xq, through k's 4-row kernel when it has one. */
static inline void ckls_vec_dot_4r(const ckls_isa_kernels *k, int type, int64_t n, float *s, const void *w,
                                   int64_t w_stride, const void *xq) {
    if (k->vec_dot_4r[type]) {
        k->vec_dot_4r[type](n, s, w, w_stride, xq);
        return;
    }
    for (int r = 0; r < 4; r++) k->vec_dot[type](n, s + r, (const char *)w + r * w_stride, xq);
}

/* Resolved kernels of an ISA (scalar filled in where the ISA has none). NULL if isa unavailable. */
const ckls_isa_kernels *ckls_isa_table(int isa);
/* The table of the active ISA (never NULL). */
const ckls_isa_kernels *ckls_active_kernels(void);

/* ---- thread pool -------------------------------------------------------------------------------------------- */
/* Runs fn(ctx, ith, nth) on every thread of the pool (the caller is thread 0) and waits for all. */
typedef void (*ckls_task_fn)(void *ctx, int ith, int nth);
void ckls_pool_run(ckls_pool *pool, ckls_task_fn fn, void *ctx);
/* A cancellable job's work queue: items handed out through an atomic counter, each hand-out polling the cancel flag
 * (NULL = none). A poll that sees the flag up marks the queue stopped, so the job reports the work it skipped even
 * when the flag is lowered again before it returns. */
typedef struct {
    atomic_llong next;
    atomic_int stopped;
    const volatile int32_t *cancel;
} ckls_queue;

static inline void ckls_queue_init(ckls_queue *q, const volatile int32_t *cancel) {
    atomic_init(&q->next, 0);
    atomic_init(&q->stopped, 0);
    q->cancel = cancel;
}
/* Whether the job was cancelled (also polled within long items). */
static inline int ckls_queue_cancelled(ckls_queue *q) {
    if (!q->cancel || !*q->cancel) return 0;
    atomic_store(&q->stopped, 1);
    return 1;
}
/* The next hand-out of [0, n) in steps of step (the first index of it), or -1 when none is left or the job was
 * cancelled. */
static inline int64_t ckls_queue_take(ckls_queue *q, int64_t n, int64_t step) {
    const int64_t it = atomic_fetch_add(&q->next, step);
    return it >= n || ckls_queue_cancelled(q) ? -1 : it;
}
/* After the job: whether any work was skipped on cancel. */
static inline int ckls_queue_stopped(ckls_queue *q) { return atomic_load(&q->stopped); }

/* ---- scratch ----------------------------------------------------------------------------------------------- */
void *ckls_aligned_alloc(size_t bytes); /* 64-byte aligned, zeroed; NULL on failure */
void ckls_aligned_free(void *p);

#endif /* CKLS_INTERNAL_H */
