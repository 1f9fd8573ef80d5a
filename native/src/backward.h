/* backward.h — what the training files share: the f32 products through frozen weights and their GEMM driver
 * (matmul_backward.c), the attention-backward reference, and the scratch-taking variants train_step.c uses so a
 * step never allocates. The kernels under them (GEMM tile, transpose, exp and softmax rows) are in the one
 * dispatch table (internal.h, dispatch.c). */
#ifndef CKLS_BACKWARD_H
#define CKLS_BACKWARD_H

#include "internal.h"

/* Reference attention backward of one query head at query rows t0..t1-1 (causal, positions from 0), a row at a
 * time: q, dout rows `qs` floats apart; k, v rows `ks` apart. Adds into dk, dv (rows `ks` apart) and writes dq.
 * sc, dp: n_tok floats. The threaded driver computes the same by blocks with the GEMM tile. */
void ckls_attn_bwd_ref(const float *q, const float *k, const float *v, const float *dout, float *dq, float *dk,
                       float *dv, int64_t t0, int64_t t1, int64_t qs, int64_t ks, int64_t d, float scale, float *sc,
                       float *dp);

/* ckls_gemm_f32 without argument checks (callers inside the core). */
void ckls_gemm(ckls_pool *pool, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t a_si,
               int64_t a_sk, const float *B, int64_t ldb, int accumulate, float *C, int64_t ldc);
/* C[M x N] (=|+=) alpha * A.W^T (A, W row-major along K) over the pool: the ISA's gemm_nt by row blocks. */
void ckls_gemm_nt(ckls_pool *pool, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                  const float *W, int64_t ldw, int accumulate, float *C, int64_t ldc);
/* ckls_matmul_backward without argument checks. cancel (NULL = none) is polled per work item: once raised, the
 * remaining items are skipped, dx is left part-written and the call returns 1 (else 0), so the caller can drop
 * the result even if the flag is lowered again meanwhile; CKLS_ENOMEM (dx untouched) without memory for its
 * tiles. */
int ckls_matmul_dx(ckls_pool *pool, int type, const void *w, int64_t n_out, int64_t n_in, const float *dy,
                    int64_t n_tok, float *dx, int accumulate, const volatile int32_t *cancel);
/* dx (+)= dy.W in bf16 products with f32 sums, where the active kernels have gemm_tile_bf16: w2 from
 * ckls_bf16_weight_pairs (W as bf16 pairs down its rows), scratch of ckls_matmul_dx_bf16_scratch() uint32 for the
 * pool's threads. cancel as for ckls_matmul_dx. */
uint32_t *ckls_bf16_weight_pairs(int type, const void *w, int64_t n_out, int64_t n_in);
int64_t ckls_matmul_dx_bf16_scratch(int nth, int64_t n_out);
int ckls_matmul_dx_bf16(ckls_pool *pool, const uint32_t *w2, int64_t n_out, int64_t n_in, const float *dy,
                        int64_t n_tok, float *dx, int accumulate, uint32_t *scratch, const volatile int32_t *cancel);
/* dx (+)= dy.W in int16 products (gemm_i16.c), where the active kernels have gemm_i16x8 and n_in is a multiple of
 * 16: wt from ckls_i16_weight_t (W^T in block_i16x8, ckls_i16_weight_blocks() of them; NULL and CKLS_ENOMEM set
 * when out of memory), scratch of ckls_matmul_dx_i16_scratch() bytes for the pool's threads (64-byte aligned).
 * cancel as for ckls_matmul_dx. */
int64_t ckls_i16_weight_blocks(int64_t n_out, int64_t n_in);
block_i16x8 *ckls_i16_weight_t(int type, const void *w, int64_t n_out, int64_t n_in);
int64_t ckls_matmul_dx_i16_scratch(int nth, int64_t n_out);
int ckls_matmul_dx_i16(ckls_pool *pool, const block_i16x8 *wt, int64_t n_out, int64_t n_in, const float *dy,
                       int64_t n_tok, float *dx, int accumulate, void *scratch, const volatile int32_t *cancel);
/* y[T x n_out] = x.W^T with W dequantized to f32 panels: the training forward (f32 activations, as the backward
 * and a PyTorch model on the dequantized weights compute; eval quantizes activations for speed instead). cancel as
 * for ckls_matmul_dx. */
int ckls_matmul_f32(ckls_pool *pool, int type, const void *w, int64_t n_out, int64_t n_in, const float *x,
                    int64_t n_tok, float *y, const volatile int32_t *cancel);
/* Causal attention of a training sequence (positions from 0) by blocks with the GEMM tile, into caller scratch of
 * ckls_attention_backward_scratch() floats. The forward also writes each row's log-sum-exp of the scaled scores,
 * lse[h * n_tok + t]; the backward takes it and the forward's out to recompute the probabilities by blocks.
 * bf16 (and the CPU has gemm_tile_bf16): the products take bf16 operands with f32 sums (the integer mode's). */
int64_t ckls_attention_backward_scratch(int nth, int64_t n_tok, int64_t n_head, int64_t n_head_kv,
                                        int64_t head_dim);
void ckls_attention_fwd(ckls_pool *pool, const float *q, const float *k, const float *v, float *out, float *lse,
                        int64_t n_tok, int64_t n_head, int64_t n_head_kv, int64_t head_dim, int bf16, float *scratch);
void ckls_attention_bwd(ckls_pool *pool, const float *q, const float *k, const float *v, const float *out,
                        const float *lse, const float *dout, float *dq, float *dk, float *dv, int64_t n_tok,
                        int64_t n_head, int64_t n_head_kv, int64_t head_dim, int bf16, float *scratch);

#endif
