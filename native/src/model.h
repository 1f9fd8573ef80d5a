/* model.h — the model's state, shared by the forward (model.c) and the LoRA training step (train_step.c). */
#ifndef CKLS_MODEL_H
#define CKLS_MODEL_H

#include "internal.h"

#define MAX_BATCH 256 /* tokens per internal chunk: bounds scratch memory, big enough for weight reuse */

struct ckls_model {
    ckls_hparams hp;
    ckls_tensor tok_embd, output_norm, output;
    ckls_layer *layers;
    int32_t n_ctx, head_dim, kv_dim;
    ckls_pool *pool;
    /* interleaved 8-row copies of the matrices the active ISA has kernels for (matmul.h), made at load in our
     * own memory (the mapped file stays untouched): [l * 7 + i] for layer l's q k v o gate up down, then
     * [n_layer * 7] for the output; NULL = none */
    void **packed;
    int64_t packed_bytes;
    float *k_cache, *v_cache; /* K: [n_layer][n_head_kv] in attn_kt.c's block layout; V: [n_layer][n_ctx][kv_dim] */
    /* scratch for MAX_BATCH tokens */
    float *x, *h, *q, *k, *v, *att, *g, *u, *hidden_last;
    void *xq;
    int32_t *pos;
    /* adapter applied by eval (ckls_model_set_lora) and its scratch: u [MAX_BATCH x r], A^T, B^T */
    const ckls_lora *lora;
    float *lora_u, *lora_bt;
    int64_t lora_cap; /* rank the scratch was sized for */
};

/* layer matrix i: 0..6 = q k v o gate up down (the order of m->packed and of the LoRA targets) */
static inline const ckls_tensor *model_matrix(const ckls_layer *L, int i) {
    const ckls_tensor *mats[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
    return mats[i];
}

#endif
