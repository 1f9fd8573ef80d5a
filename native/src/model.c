/* model.c — the llama / qwen2 transformer forward: one C call evaluates a whole batch of tokens through every
 * layer, writing K/V into the cache and logits out. Weights are the caller's (mmap'd GGUF); only activations,
 * the KV cache and scratch are allocated here. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "lora.h"
#include "matmul.h"
#include "model.h"

/* ---- validation ------------------------------------------------------------------------------------------- */

static int check_tensor(const char *name, int layer, const ckls_tensor *t, int64_t ne0, int64_t ne1, int optional,
                        int f32_only) {
    char where[64];
    if (layer >= 0) snprintf(where, sizeof where, "blk.%d.%s", layer, name);
    else snprintf(where, sizeof where, "%s", name);
    if (!t->data) return optional ? CKLS_OK : ckls_fail(CKLS_EINVAL, "tensor %s is missing", where);
    if (f32_only ? t->type != CKLS_TYPE_F32 : !ckls_type_supported(t->type))
        return ckls_fail(CKLS_EINVAL, "tensor %s has unsupported type %d%s", where, t->type,
                         f32_only ? " (must be f32)" : "");
    if (t->ne0 != ne0 || t->ne1 != ne1)
        return ckls_fail(CKLS_EINVAL, "tensor %s has shape [%lld, %lld], expected [%lld, %lld]", where,
                         (long long)t->ne0, (long long)t->ne1, (long long)ne0, (long long)ne1);
    const int64_t rb = ckls_row_bytes(t->type, ne0);
    if (rb < 0) return ckls_fail(CKLS_EINVAL, "tensor %s: row of %lld is not a multiple of its block size", where,
                                 (long long)ne0);
    if (t->nbytes < rb * ne1)
        return ckls_fail(CKLS_EINVAL, "tensor %s needs %lld bytes, only %lld available", where,
                         (long long)(rb * ne1), (long long)t->nbytes);
    return CKLS_OK;
}

static int check_hparams(const ckls_hparams *hp) {
    if (hp->arch != CKLS_ARCH_LLAMA && hp->arch != CKLS_ARCH_QWEN2)
        return ckls_fail(CKLS_EINVAL, "unknown architecture id %d", hp->arch);
    if (hp->n_vocab <= 0 || hp->n_vocab > (1 << 24)) return ckls_fail(CKLS_EINVAL, "n_vocab %d out of range", hp->n_vocab);
    if (hp->n_embd <= 0 || hp->n_embd > 65536) return ckls_fail(CKLS_EINVAL, "n_embd %d out of range", hp->n_embd);
    if (hp->n_layer <= 0 || hp->n_layer > 1024) return ckls_fail(CKLS_EINVAL, "n_layer %d out of range", hp->n_layer);
    if (hp->n_ff <= 0 || hp->n_ff > 1 << 20) return ckls_fail(CKLS_EINVAL, "n_ff %d out of range", hp->n_ff);
    if (hp->n_head <= 0 || hp->n_head_kv <= 0 || hp->n_head % hp->n_head_kv || hp->n_embd % hp->n_head)
        return ckls_fail(CKLS_EINVAL, "heads %d / kv heads %d do not divide n_embd %d", hp->n_head, hp->n_head_kv,
                         hp->n_embd);
    const int head_dim = hp->n_embd / hp->n_head;
    if (hp->n_rot <= 0 || hp->n_rot > head_dim || hp->n_rot % 2 || hp->n_rot > 2048)
        return ckls_fail(CKLS_EINVAL, "rope dimension %d invalid for head size %d", hp->n_rot, head_dim);
    if (hp->rope_mode != CKLS_ROPE_NORM && hp->rope_mode != CKLS_ROPE_NEOX)
        return ckls_fail(CKLS_EINVAL, "unknown rope mode %d", hp->rope_mode);
    if (!(hp->rms_eps > 0.0f && hp->rms_eps < 1.0f)) return ckls_fail(CKLS_EINVAL, "rms epsilon %g out of range", hp->rms_eps);
    if (!(hp->rope_base > 0.0f && isfinite(hp->rope_base)))
        return ckls_fail(CKLS_EINVAL, "rope base %g out of range", hp->rope_base);
    return CKLS_OK;
}

static int check_weights(const ckls_hparams *hp, const ckls_tensor *tok_embd, const ckls_tensor *output_norm,
                         const ckls_tensor *output, const ckls_layer *layers) {
    const int64_t d = hp->n_embd, kv = (int64_t)hp->n_head_kv * (d / hp->n_head), ff = hp->n_ff;
    int rc;
    if ((rc = check_tensor("token_embd.weight", -1, tok_embd, d, hp->n_vocab, 0, 0))) return rc;
    if ((rc = check_tensor("output_norm.weight", -1, output_norm, d, 1, 0, 1))) return rc;
    if ((rc = check_tensor("output.weight", -1, output, d, hp->n_vocab, 1, 0))) return rc;
    for (int l = 0; l < hp->n_layer; l++) {
        const ckls_layer *L = &layers[l];
        if ((rc = check_tensor("attn_norm.weight", l, &L->attn_norm, d, 1, 0, 1))) return rc;
        if ((rc = check_tensor("attn_q.weight", l, &L->wq, d, d, 0, 0))) return rc;
        if ((rc = check_tensor("attn_k.weight", l, &L->wk, d, kv, 0, 0))) return rc;
        if ((rc = check_tensor("attn_v.weight", l, &L->wv, d, kv, 0, 0))) return rc;
        if ((rc = check_tensor("attn_q.bias", l, &L->bq, d, 1, 1, 1))) return rc;
        if ((rc = check_tensor("attn_k.bias", l, &L->bk, kv, 1, 1, 1))) return rc;
        if ((rc = check_tensor("attn_v.bias", l, &L->bv, kv, 1, 1, 1))) return rc;
        if ((rc = check_tensor("attn_output.weight", l, &L->wo, d, d, 0, 0))) return rc;
        if ((rc = check_tensor("ffn_norm.weight", l, &L->ffn_norm, d, 1, 0, 1))) return rc;
        if ((rc = check_tensor("ffn_gate.weight", l, &L->w_gate, d, ff, 0, 0))) return rc;
        if ((rc = check_tensor("ffn_up.weight", l, &L->w_up, d, ff, 0, 0))) return rc;
        if ((rc = check_tensor("ffn_down.weight", l, &L->w_down, ff, d, 0, 0))) return rc;
        /* The activation formats must fit the row lengths too (Q8_K needs multiples of 256, Q8_0 of 32). */
        const ckls_tensor *mats[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < 7; i++)
            if (ckls_row_bytes(ckls_type_vec_dot_type(mats[i]->type), mats[i]->ne0) < 0)
                return ckls_fail(CKLS_EINVAL, "blk.%d: row length %lld does not fit the activation format", l,
                                 (long long)mats[i]->ne0);
    }
    const ckls_tensor *out = output->data ? output : tok_embd;
    if (ckls_row_bytes(ckls_type_vec_dot_type(out->type), out->ne0) < 0)
        return ckls_fail(CKLS_EINVAL, "output: row length does not fit the activation format");
    return CKLS_OK;
}

/* ---- lifetime ------------------------------------------------------------------------------------------------ */

void ckls_model_free(ckls_model *m) {
    if (!m) return;
    ckls_pool_free(m->pool);
    if (m->packed)
        for (int i = 0; i <= m->hp.n_layer * 7; i++) ckls_aligned_free(m->packed[i]);
    free(m->packed);
    free(m->layers);
    float *bufs[] = {m->k_cache, m->v_cache, m->x, m->h, m->q, m->k, m->v, m->att, m->g, m->u, m->hidden_last};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) ckls_aligned_free(bufs[i]);
    ckls_aligned_free(m->xq);
    ckls_aligned_free(m->pos);
    ckls_aligned_free(m->lora_u);
    ckls_aligned_free(m->lora_bt);
    free(m);
}

/* Interleaved copies of the Q4 and Q8_0 matrices for the active ISA's 8-row kernels: a prompt's activations then feed 8
 * rows per pass. Costs the matrices' size again in memory; CKLS_REPACK=0 turns it off (the row kernels on the
 * mapped file remain, e.g. for comparing the two). */
static int repack_weights(ckls_model *m) {
    const char *env = getenv("CKLS_REPACK");
    const int n = m->hp.n_layer * 7 + 1;
    m->packed = calloc((size_t)n, sizeof(void *));
    if (!m->packed) return ckls_fail(CKLS_ENOMEM, "out of memory");
    if (env && !strcmp(env, "0")) return CKLS_OK;
    for (int i = 0; i < n; i++) {
        const ckls_tensor *t = i == n - 1 ? &m->output : model_matrix(&m->layers[i / 7], i % 7);
        int64_t bytes;
        m->packed[i] = ckls_repack_matrix(m->pool, t->type, t->data, t->ne1, t->ne0, &bytes);
        if (bytes < 0) return ckls_fail(CKLS_ENOMEM, "out of memory repacking weights");
        m->packed_bytes += bytes;
    }
    return CKLS_OK;
}

ckls_model *ckls_model_create(const ckls_hparams *hp, const ckls_tensor *tok_embd, const ckls_tensor *output_norm,
                              const ckls_tensor *output, const ckls_layer *layers, int32_t n_ctx, int32_t n_threads) {
    if (!hp || !tok_embd || !output_norm || !output || !layers) {
        ckls_fail(CKLS_EINVAL, "model: NULL argument");
        return NULL;
    }
    if (check_hparams(hp) || check_weights(hp, tok_embd, output_norm, output, layers)) return NULL;
    if (n_ctx <= 0 || n_ctx > (1 << 20)) {
        ckls_fail(CKLS_EINVAL, "context length %d out of range", n_ctx);
        return NULL;
    }
    ckls_model *m = calloc(1, sizeof *m);
    if (!m) { ckls_fail(CKLS_ENOMEM, "out of memory"); return NULL; }
    m->hp = *hp;
    m->tok_embd = *tok_embd;
    m->output_norm = *output_norm;
    m->output = output->data ? *output : *tok_embd; /* tied output */
    m->n_ctx = n_ctx;
    m->head_dim = hp->n_embd / hp->n_head;
    m->kv_dim = hp->n_head_kv * m->head_dim;
    m->layers = malloc(sizeof(ckls_layer) * (size_t)hp->n_layer);
    m->pool = ckls_pool_create(n_threads);
    if (!m->pool) { ckls_model_free(m); return NULL; } /* the pool left its own message */
    if (!m->layers) { ckls_model_free(m); ckls_fail(CKLS_ENOMEM, "out of memory"); return NULL; }
    memcpy(m->layers, layers, sizeof(ckls_layer) * (size_t)hp->n_layer);
    if (repack_weights(m)) { ckls_model_free(m); return NULL; }

    const size_t B = MAX_BATCH, d = (size_t)hp->n_embd, ff = (size_t)hp->n_ff, kv = (size_t)m->kv_dim;
    const size_t cache = (size_t)hp->n_layer * (size_t)n_ctx * kv * sizeof(float);
    const size_t kcache = (size_t)hp->n_layer * (size_t)(hp->n_head_kv * ckls_kt_head_floats(n_ctx, m->head_dim)) *
                          sizeof(float); /* K in attention's block layout (attn_kt.c) */
    size_t xq_row = 0; /* largest activation row over every matrix's input length and format */
    const int64_t in_lens[] = {hp->n_embd, hp->n_ff};
    for (int i = 0; i < 2; i++)
        for (int act = 0; act < CKLS_TYPE_MAX; act++)
            if ((act == CKLS_TYPE_F32 || act == CKLS_TYPE_Q8_0 || act == CKLS_TYPE_Q8_K) &&
                ckls_row_bytes(act, in_lens[i]) > (int64_t)xq_row)
                xq_row = (size_t)ckls_row_bytes(act, in_lens[i]);
    m->k_cache = ckls_aligned_alloc(kcache);
    m->v_cache = ckls_aligned_alloc(cache);
    m->x = ckls_aligned_alloc(B * d * 4);
    m->h = ckls_aligned_alloc(B * d * 4);
    m->q = ckls_aligned_alloc(B * d * 4);
    m->k = ckls_aligned_alloc(B * kv * 4);
    m->v = ckls_aligned_alloc(B * kv * 4);
    m->att = ckls_aligned_alloc(B * d * 4);
    m->g = ckls_aligned_alloc(B * ff * 4);
    m->u = ckls_aligned_alloc(B * ff * 4);
    m->hidden_last = ckls_aligned_alloc(d * 4);
    m->xq = ckls_aligned_alloc(B * xq_row);
    m->pos = ckls_aligned_alloc(B * sizeof(int32_t));
    if (!m->k_cache || !m->v_cache || !m->x || !m->h || !m->q || !m->k || !m->v || !m->att || !m->g || !m->u ||
        !m->hidden_last || !m->xq || !m->pos) {
        ckls_model_free(m);
        ckls_fail(CKLS_ENOMEM, "out of memory for the KV cache (%zu MB) and scratch", (kcache + cache) >> 20);
        return NULL;
    }
    return m;
}

int32_t ckls_model_n_ctx(const ckls_model *m) { return m ? m->n_ctx : 0; }
int64_t ckls_model_packed_bytes(const ckls_model *m) { return m ? m->packed_bytes : 0; }

/* ---- forward ----------------------------------------------------------------------------------------------------- */

/* y[t] = W · x[t] for n rows of input length n_in, plus lr (NULL: none); quantizes x once per activation format. */
static int linear(ckls_model *m, const ckls_tensor *w, const void *packed, const float *x, int64_t n, float *y,
                  const volatile int32_t *cancel, const ckls_epilogue *lr) {
    const int act = ckls_type_vec_dot_type(w->type);
    const int64_t rb = ckls_row_bytes(act, w->ne0);
    ckls_quantize_acts(m->pool, act, x, m->xq, w->ne0, n);
    return ckls_matmul_packed_ep(m->pool, w->type, w->data, packed, w->ne1, w->ne0, m->xq, rb, n, y, w->ne1, cancel,
                                 NULL, lr);
}

/* linear() plus the adapter's low-rank term for layer l, matrix ti (0..6 = q k v o gate up down), which the
 * product adds as it goes */
static int linear_l(ckls_model *m, int l, int ti, const ckls_tensor *w, const float *x, int64_t n, float *y,
                    const volatile int32_t *cancel) {
    ckls_lora_mat a;
    if (!m->lora || !ckls_lora_get(m->lora, l, ti, &a))
        return linear(m, w, m->packed[l * 7 + ti], x, n, y, cancel, NULL);
    const ckls_epilogue lr = {.u = m->lora_u, .bt = m->lora_bt, .r = ckls_lora_rank(m->lora),
                              .scale = ckls_lora_scale(m->lora)};
    ckls_lora_fwd_u(m->pool, a.A, a.B, lr.r, a.n_in, a.n_out, x, n, m->lora_u, m->lora_bt);
    return linear(m, w, m->packed[l * 7 + ti], x, n, y, cancel, &lr);
}

int ckls_model_set_lora(ckls_model *m, const ckls_lora *a) {
    if (!m) return ckls_fail(CKLS_EINVAL, "set_lora: NULL model");
    if (a) {
        int rc = ckls_lora_check(a, &m->hp);
        if (rc) return rc;
        const int64_t r = ckls_lora_rank(a);
        if (r > m->lora_cap) {
            const int64_t big = m->hp.n_embd > m->hp.n_ff ? m->hp.n_embd : m->hp.n_ff;
            float *u = ckls_aligned_alloc(sizeof(float) * (size_t)(MAX_BATCH * r));
            float *bt = ckls_aligned_alloc(sizeof(float) * (size_t)(big * r));
            if (!u || !bt) {
                ckls_aligned_free(u);
                ckls_aligned_free(bt);
                return ckls_fail(CKLS_ENOMEM, "set_lora: out of memory");
            }
            ckls_aligned_free(m->lora_u);
            ckls_aligned_free(m->lora_bt);
            m->lora_u = u;
            m->lora_bt = bt;
            m->lora_cap = r;
        }
    }
    m->lora = a;
    return CKLS_OK;
}

static void add_bias(float *y, const ckls_tensor *b, int64_t n, int64_t dim) {
    if (!b->data) return;
    const float *bv = b->data;
    for (int64_t t = 0; t < n; t++)
        for (int64_t i = 0; i < dim; i++) y[t * dim + i] += bv[i];
}

static int eval_chunk(ckls_model *m, const int32_t *tokens, int32_t n, int32_t pos0, float *logits, int32_t logits_all,
                      const volatile int32_t *cancel) {
    const ckls_hparams *hp = &m->hp;
    const int64_t d = hp->n_embd, kv = m->kv_dim, ff = hp->n_ff, hd = m->head_dim;
    const int64_t emb_rb = ckls_row_bytes(m->tok_embd.type, d);
    const ckls_type_info *emb = ckls_type_get(m->tok_embd.type);
    int rc;
    for (int32_t t = 0; t < n; t++) {
        emb->to_float((const char *)m->tok_embd.data + (int64_t)tokens[t] * emb_rb, m->x + t * d, d);
        m->pos[t] = pos0 + t;
    }
    for (int l = 0; l < hp->n_layer; l++) {
        if (cancel && *cancel) return ckls_fail(CKLS_ECANCELLED, "cancelled");
        const ckls_layer *L = &m->layers[l];
        float *kc = m->k_cache + (size_t)l * (size_t)(hp->n_head_kv * ckls_kt_head_floats(m->n_ctx, hd));
        float *vc = m->v_cache + ((size_t)l * m->n_ctx) * kv;

        ckls_rmsnorm(m->x, L->attn_norm.data, m->h, n, d, hp->rms_eps);
        if ((rc = linear_l(m, l, 0, &L->wq, m->h, n, m->q, cancel))) return rc;
        if ((rc = linear_l(m, l, 1, &L->wk, m->h, n, m->k, cancel))) return rc;
        if ((rc = linear_l(m, l, 2, &L->wv, m->h, n, m->v, cancel))) return rc;
        add_bias(m->q, &L->bq, n, d);
        add_bias(m->k, &L->bk, n, kv);
        add_bias(m->v, &L->bv, n, kv);
        ckls_rope(m->q, n, hp->n_head, hd, m->pos, hp->n_rot, hp->rope_base, hp->rope_mode);
        ckls_rope(m->k, n, hp->n_head_kv, hd, m->pos, hp->n_rot, hp->rope_base, hp->rope_mode);
        ckls_kt_store(kc, m->n_ctx, hp->n_head_kv, hd, m->k, kv, n, pos0);
        memcpy(vc + (size_t)pos0 * kv, m->v, sizeof(float) * (size_t)(n * kv));
        if ((rc = ckls_attention_kt(m->pool, m->q, kc, m->n_ctx, vc, m->att, n, pos0, hp->n_head, hp->n_head_kv, hd,
                                    kv)))
            return rc;
        if ((rc = linear_l(m, l, 3, &L->wo, m->att, n, m->h, cancel))) return rc;
        for (int64_t i = 0; i < n * d; i++) m->x[i] += m->h[i];

        ckls_rmsnorm(m->x, L->ffn_norm.data, m->h, n, d, hp->rms_eps);
        if ((rc = linear_l(m, l, 4, &L->w_gate, m->h, n, m->g, cancel))) return rc;
        if ((rc = linear_l(m, l, 5, &L->w_up, m->h, n, m->u, cancel))) return rc;
        ckls_swiglu(m->g, m->u, m->g, n * ff);
        if ((rc = linear_l(m, l, 6, &L->w_down, m->g, n, m->h, cancel))) return rc;
        for (int64_t i = 0; i < n * d; i++) m->x[i] += m->h[i];
    }
    /* Final norm and logits: all rows when asked, else only the last token's. */
    const int64_t first = logits_all ? 0 : n - 1, rows = n - first;
    ckls_rmsnorm(m->x + first * d, m->output_norm.data, m->h, rows, d, hp->rms_eps);
    memcpy(m->hidden_last, m->h + (rows - 1) * d, sizeof(float) * (size_t)d);
    if (!logits) return CKLS_OK;
    return linear(m, &m->output, m->packed[hp->n_layer * 7], m->h, rows, logits, cancel, NULL);
}

static int check_tokens(const ckls_model *m, const int32_t *tokens, int32_t n_tok, int32_t pos0) {
    if (!m || !tokens || n_tok <= 0) return ckls_fail(CKLS_EINVAL, "eval: need at least one token");
    if (pos0 < 0 || (int64_t)pos0 + n_tok > m->n_ctx)
        return ckls_fail(CKLS_ERANGE, "eval: positions %d..%d exceed the context of %d", pos0, pos0 + n_tok - 1, m->n_ctx);
    for (int32_t t = 0; t < n_tok; t++)
        if (tokens[t] < 0 || tokens[t] >= m->hp.n_vocab)
            return ckls_fail(CKLS_EINVAL, "eval: token id %d at %d outside vocabulary of %d", tokens[t], t, m->hp.n_vocab);
    return CKLS_OK;
}

int ckls_model_eval(ckls_model *m, const int32_t *tokens, int32_t n_tok, int32_t pos0, float *logits,
                    int32_t logits_all, const volatile int32_t *cancel) {
    int rc = check_tokens(m, tokens, n_tok, pos0);
    if (rc) return rc;
    for (int32_t done = 0; done < n_tok; done += MAX_BATCH) {
        const int32_t n = n_tok - done < MAX_BATCH ? n_tok - done : MAX_BATCH;
        const int last_chunk = done + n == n_tok;
        float *out = NULL;
        if (logits_all) out = logits ? logits + (size_t)done * m->hp.n_vocab : NULL;
        else if (last_chunk) out = logits;
        /* Middle chunks without logits_all still need K/V but no output: skip the vocab projection. */
        if ((rc = eval_chunk(m, tokens + done, n, pos0 + done, out, logits_all, cancel))) return rc;
    }
    return CKLS_OK;
}

int ckls_model_eval_hidden(ckls_model *m, const int32_t *tokens, int32_t n_tok, int32_t pos0, float *hidden,
                           const volatile int32_t *cancel) {
    int rc = check_tokens(m, tokens, n_tok, pos0);
    if (rc) return rc;
    if (!hidden) return ckls_fail(CKLS_EINVAL, "eval_hidden: NULL output");
    const size_t d = (size_t)m->hp.n_embd;
    for (int32_t done = 0; done < n_tok; done += MAX_BATCH) {
        const int32_t n = n_tok - done < MAX_BATCH ? n_tok - done : MAX_BATCH;
        /* every row through the final norm into m->h, no vocabulary projection */
        if ((rc = eval_chunk(m, tokens + done, n, pos0 + done, NULL, 1, cancel))) return rc;
        memcpy(hidden + (size_t)done * d, m->h, sizeof(float) * (size_t)n * d);
    }
    return CKLS_OK;
}

int ckls_model_last_hidden(const ckls_model *m, float *out) {
    if (!m || !out) return ckls_fail(CKLS_EINVAL, "NULL argument");
    memcpy(out, m->hidden_last, sizeof(float) * (size_t)m->hp.n_embd);
    return CKLS_OK;
}
