/* PENDING — placeholders so the tree links while the thread pool, matmul, ops, model and sampler are
 * written; delete when pool.c, matmul.c, ops_forward.c, attention.c, model.c and sample.c exist. */
#include "internal.h"

ckls_pool *ckls_pool_create(int n_threads) { ckls_fail(CKLS_EINVAL, "not built yet"); return NULL; }
void ckls_pool_free(ckls_pool *pool) {}
int ckls_pool_threads(const ckls_pool *pool) { return 1; }
int ckls_matmul(ckls_pool *pool, int type, const void *w, int64_t n_out, int64_t n_in, const float *x,
                int64_t n_tok, float *y) { return CKLS_EINVAL; }
int ckls_matmul_c(ckls_pool *pool, int type, const void *w, int64_t n_out, int64_t n_in, const float *x,
                  int64_t n_tok, float *y, const volatile int32_t *cancel) { return CKLS_EINVAL; }
int ckls_rmsnorm(const float *x, const float *w, float *y, int64_t n_rows, int64_t n, float eps) { return CKLS_EINVAL; }
int ckls_rope(float *x, int64_t n_tok, int64_t n_head, int64_t head_dim, const int32_t *pos, int64_t n_rot,
              float freq_base, int mode) { return CKLS_EINVAL; }
int ckls_softmax(float *x, int64_t n_rows, int64_t n) { return CKLS_EINVAL; }
int ckls_swiglu(const float *gate, const float *up, float *y, int64_t n) { return CKLS_EINVAL; }
int ckls_attention(ckls_pool *pool, const float *q, const float *k, const float *v, float *out, int64_t n_tok,
                   int64_t pos0, int64_t n_head, int64_t n_head_kv, int64_t head_dim, int64_t kv_stride) { return CKLS_EINVAL; }
ckls_model *ckls_model_create(const ckls_hparams *hp, const ckls_tensor *tok_embd, const ckls_tensor *output_norm,
                              const ckls_tensor *output, const ckls_layer *layers, int32_t n_ctx, int32_t n_threads) {
    ckls_fail(CKLS_EINVAL, "not built yet");
    return NULL;
}
void ckls_model_free(ckls_model *m) {}
int32_t ckls_model_n_ctx(const ckls_model *m) { return 0; }
int ckls_model_eval(ckls_model *m, const int32_t *tokens, int32_t n_tok, int32_t pos0, float *logits,
                    int32_t logits_all, const volatile int32_t *cancel) { return CKLS_EINVAL; }
int ckls_model_last_hidden(const ckls_model *m, float *out) { return CKLS_EINVAL; }
int32_t ckls_sample(float *logits, int32_t n_vocab, const ckls_sampler_params *p, uint64_t *rng,
                    const int32_t *recent, int32_t n_recent) { return 0; }
