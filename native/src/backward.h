/* backward.h — what the training files share: the f32 GEMM tile kernel of each ISA (the scalar reference beside
 * the SIMD one), the attention-backward reference, and the scratch-taking variants train_step.c uses so a
 * step never allocates. */
#ifndef CKLS_BACKWARD_H
#define CKLS_BACKWARD_H

#include "internal.h"

/* C[m x n] (=|+=) alpha * A.B for one tile: A(i, k) at A[i * a_si + k * a_sk], B row-major (row stride ldb).
 * accumulate 0: C is overwritten. */
typedef void (*ckls_gemm_tile_fn)(int64_t m, int64_t n, int64_t k, float alpha, const float *A, int64_t a_si,
                                  int64_t a_sk, const float *B, int64_t ldb, int accumulate, float *C, int64_t ldc);

/* y[i] = exp(x[i] - shift) for n floats (y may be x); returns their sum. Softmax rows and the loss: a polynomial
 * exp (relative error ~2e-7, 0 below exp(-87.3), clamped at exp(88)) instead of libm's expf one element at a time. */
typedef double (*ckls_exp_shift_fn)(float *y, const float *x, int64_t n, float shift);

/* dst[j * ldd + i] = src[i * lds + j] for i < rows, j < cols: weight panels laid out for the tile's B operand. */
typedef void (*ckls_transpose_fn)(const float *src, int64_t rows, int64_t cols, int64_t lds, float *dst, int64_t ldd);

/* One attention row over its n >= 1 keys, in place: p holds the scaled scores and gets the probabilities. The
 * backward's version also turns g = dP (dO.V^T) into dS = scale * p * (g - sum(p * g)), the sum in double. At
 * 1,024 tokens these row passes, not the products, were most of attention's time. */
typedef void (*ckls_softmax_fn)(float *p, int64_t n);
typedef void (*ckls_softmax_bwd_fn)(float *p, float *g, int64_t n, float scale);

typedef struct {
    ckls_gemm_tile_fn gemm_tile;
    ckls_exp_shift_fn exp_shift;
    ckls_transpose_fn transpose;
    ckls_softmax_fn softmax;
    ckls_softmax_bwd_fn softmax_bwd;
} ckls_bwd_kernels;

void ckls_gemm_tile_ref(int64_t m, int64_t n, int64_t k, float alpha, const float *A, int64_t a_si, int64_t a_sk,
                        const float *B, int64_t ldb, int accumulate, float *C, int64_t ldc);
double ckls_exp_shift_ref(float *y, const float *x, int64_t n, float shift);
void ckls_transpose_ref(const float *src, int64_t rows, int64_t cols, int64_t lds, float *dst, int64_t ldd);
void ckls_softmax_ref(float *p, int64_t n);
void ckls_softmax_bwd_ref(float *p, float *g, int64_t n, float scale);
/* The polynomial both compute, for one value (the SIMD kernels evaluate it lane-wise with FMAs). */
#define CKLS_EXP_LO -87.33654f /* below: 0 (exp would be denormal) */
#define CKLS_EXP_HI 88.0f /* above: clamped (2^k stays a normal float) */
/* Reference attention backward of one query head at query rows t0..t1-1 (causal, positions from 0), a row at a
 * time: q, dout rows `qs` floats apart; k, v rows `ks` apart. Adds into dk, dv (rows `ks` apart) and writes dq.
 * sc, dp: n_tok floats. The threaded driver computes the same by blocks with the GEMM tile. */
void ckls_attn_bwd_ref(const float *q, const float *k, const float *v, const float *dout, float *dq, float *dk,
                       float *dv, int64_t t0, int64_t t1, int64_t qs, int64_t ks, int64_t d, float scale, float *sc,
                       float *dp);

extern const ckls_bwd_kernels ckls_bwd_scalar;
const ckls_bwd_kernels *ckls_bwd_avx2(void); /* NULL when not compiled in */
const ckls_bwd_kernels *ckls_bwd_avx512(void);
/* Kernels of an ISA (scalar where it has none; NULL if unavailable), and of the active ISA. */
const ckls_bwd_kernels *ckls_bwd_isa(int isa);
const ckls_bwd_kernels *ckls_bwd_active(void);

/* ckls_gemm_f32 without argument checks (callers inside the core). */
void ckls_gemm(ckls_pool *pool, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t a_si,
               int64_t a_sk, const float *B, int64_t ldb, int accumulate, float *C, int64_t ldc);
/* ckls_matmul_backward without argument checks. cancel (NULL = none) is polled per work item: once raised, the
 * remaining items are skipped, dx is left part-written and the call returns 1 (else 0), so the caller can drop
 * the result even if the flag is lowered again meanwhile. */
int ckls_matmul_dx(ckls_pool *pool, int type, const void *w, int64_t n_out, int64_t n_in, const float *dy,
                    int64_t n_tok, float *dx, int accumulate, const volatile int32_t *cancel);
/* y[T x n_out] = x.W^T with W dequantized to f32 panels: the training forward (f32 activations, as the backward
 * and a PyTorch model on the dequantized weights compute; eval quantizes activations for speed instead). cancel as
 * for ckls_matmul_dx. */
int ckls_matmul_f32(ckls_pool *pool, int type, const void *w, int64_t n_out, int64_t n_in, const float *x,
                    int64_t n_tok, float *y, const volatile int32_t *cancel);
/* Causal attention of a training sequence (positions from 0) by blocks of query rows with the GEMM tile: the
 * forward of ckls_attention_bwd, into the same scratch. */
void ckls_attention_fwd(ckls_pool *pool, const float *q, const float *k, const float *v, float *out, int64_t n_tok,
                        int64_t n_head, int64_t n_head_kv, int64_t head_dim, float *scratch);
/* Attention backward into caller scratch of ckls_attention_backward_scratch() floats. */
int64_t ckls_attention_backward_scratch(int nth, int64_t n_tok, int64_t n_head_kv, int64_t head_dim);
void ckls_attention_bwd(ckls_pool *pool, const float *q, const float *k, const float *v, const float *dout, float *dq,
                        float *dk, float *dv, int64_t n_tok, int64_t n_head, int64_t n_head_kv, int64_t head_dim,
                        float *scratch);

/* ---- LoRA on one matrix (lora.c) ---- */
/* u[T x r] = x.A^T; y[T x n_out] += scale * u.B^T. bt: r * n_out floats of scratch. */
void ckls_lora_fwd(ckls_pool *pool, const float *A, const float *B, int64_t r, int64_t n_in, int64_t n_out,
                   float scale, const float *x, int64_t n_tok, float *u, float *y, float *at, float *bt);
/* From dy and the forward's x, u: dA += du^T.x, dB += scale * dy^T.u (du = scale * dy.B, into du scratch
 * [T x r]); dx += du.A when dx is not NULL. */
void ckls_lora_bwd(ckls_pool *pool, const float *A, const float *B, float *dA, float *dB, int64_t r, int64_t n_in,
                   int64_t n_out, float scale, const float *x, const float *u, const float *dy, int64_t n_tok,
                   float *du, float *dx);

/* The adapter's tensors for layer l, target index ti (0..6 = q, k, v, o, gate, up, down); NULL when absent. */
typedef struct {
    const float *A, *B;
    float *dA, *dB;
    int64_t n_in, n_out;
} ckls_lora_mat;
int ckls_lora_get(const ckls_lora *a, int layer, int ti, ckls_lora_mat *out); /* 1 if present */
float *ckls_lora_grads_at(ckls_lora *a, float *grads, int layer, int ti, int is_b); /* same offset in another buffer */
/* 0 if the adapter's shapes fit the model's hyper-parameters. */
int ckls_lora_check(const ckls_lora *a, const ckls_hparams *hp);

#endif
