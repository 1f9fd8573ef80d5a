/* lora.h — an adapter's matrices as the model's forward (model.c) and the training step (train_step.c) use them:
 * the forward and backward of one adapted matrix, and where each layer's tensors and gradients are (lora.c). */
#ifndef CKLS_LORA_H
#define CKLS_LORA_H

#include "internal.h"

/* The forward's first half: u[T x r] = x.A^T and bt = B^T (r * n_out floats of scratch). The second,
 * y[T x n_out] += scale * u.B^T, the integer products add to their outputs as they go (ckls_epilogue in matmul.h);
 * the f32 ones take ckls_gemm after. */
void ckls_lora_fwd_u(ckls_pool *pool, const float *A, const float *B, int64_t r, int64_t n_in, int64_t n_out,
                     const float *x, int64_t n_tok, float *u, float *bt);
/* From dy and the forward's x, u: dA += du^T.x, dB += scale * dy^T.u (du = scale * dy.B, into du scratch
 * [T x r]); dx += du.A when dx is not NULL. part: ckls_lora_bwd_scratch() floats, for partial dA, dB (up to
 * max_tok tokens, n_in_max, n_out_max: the largest shapes it will see). */
int64_t ckls_lora_bwd_scratch(int64_t max_tok, int64_t r, int64_t n_in_max, int64_t n_out_max);
void ckls_lora_bwd(ckls_pool *pool, const float *A, const float *B, float *dA, float *dB, int64_t r, int64_t n_in,
                   int64_t n_out, float scale, const float *x, const float *u, const float *dy, int64_t n_tok,
                   float *du, float *dx, float *part);

/* The adaptable matrices in their one order: target i has flag 1 << i (ckls.h) and the GGUF name
 * ckls_lora_target_name(i). The forward, the training step and the adapter file all index by it. */
enum { TQ, TK, TV, TO, TGATE, TUP, TDOWN, N_TARGETS };
_Static_assert((int)N_TARGETS == (int)CKLS_LORA_N_TARGETS, "the target order in lora.h and ckls.h must agree");

/* The adapter's tensors for layer l, target index ti (TQ .. TDOWN); NULL when absent. */
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
