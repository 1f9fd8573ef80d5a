/* attention.c — causal grouped-query attention over the KV cache. Work items are (KV head, a few consecutive
 * tokens): the query heads that share a KV head are handled together so each cached K block and V row is read
 * once for all of them (ckls_isa_kernels.attn_kt, K in attn_kt.c's block layout). */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "internal.h"

typedef struct {
    const float *q, *kt, *v;
    float *out;
    int64_t n_tok, pos0, n_head, n_head_kv, head_dim, kt_head, v_stride, tokens, n_tiles, scratch;
    float *scores; /* per thread: `scratch` floats */
    atomic_llong next;
    const ckls_isa_kernels *kern;
} attn_job;

static void attn_task(void *p, int ith, int nth) {
    attn_job *j = p;
    const int64_t group = j->n_head / j->n_head_kv, d = j->head_dim, q_stride = j->n_head * d;
    float *sc = j->scores + (int64_t)ith * j->scratch;
    const float scale = 1.0f / sqrtf((float)d);
    for (;;) {
        const int64_t item = atomic_fetch_add(&j->next, 1);
        if (item >= j->n_tiles * j->n_head_kv) break;
        /* the last tokens (the longest rows) first, so that the threads end together */
        const int64_t t0 = (j->n_tiles - 1 - item / j->n_head_kv) * j->tokens, kvh = item % j->n_head_kv;
        const int64_t nt = j->n_tok - t0 < j->tokens ? j->n_tok - t0 : j->tokens;
        const int64_t off = t0 * q_stride + kvh * group * d; /* the group's heads are adjacent */
        j->kern->attn_kt(j->q + off, q_stride, nt, group, j->kt + kvh * j->kt_head, j->v + kvh * d, j->v_stride,
                         j->pos0 + t0 + 1, d, scale, sc, j->out + off);
    }
}

int ckls_attention_kt(ckls_pool *pool, const float *q, const float *kt, int64_t n_ctx, const float *v, float *out,
                      int64_t n_tok, int64_t pos0, int64_t n_head, int64_t n_head_kv, int64_t head_dim,
                      int64_t v_stride) {
    if (!q || !kt || !v || !out || n_tok < 0 || pos0 < 0 || n_head <= 0 || n_head_kv <= 0 || head_dim <= 0 ||
        n_head % n_head_kv || v_stride < n_head_kv * head_dim || pos0 + n_tok > n_ctx)
        return ckls_fail(CKLS_EINVAL, "attention: bad arguments");
    if (n_tok == 0) return CKLS_OK;
    const int nth = ckls_pool_threads(pool);
    const int64_t group = n_head / n_head_kv, tokens = group >= 8 ? 1 : 8 / group;
    const int64_t scratch = tokens * group * (pos0 + n_tok + 2 * CKLS_KT_BLOCK);
    float *scores = ckls_aligned_alloc(sizeof(float) * (size_t)(nth * scratch));
    if (!scores) return ckls_fail(CKLS_ENOMEM, "attention: out of memory");
    attn_job j = {.q = q, .kt = kt, .v = v, .out = out, .n_tok = n_tok, .pos0 = pos0, .n_head = n_head,
                  .n_head_kv = n_head_kv, .head_dim = head_dim, .kt_head = ckls_kt_head_floats(n_ctx, head_dim),
                  .v_stride = v_stride, .tokens = tokens, .n_tiles = (n_tok + tokens - 1) / tokens,
                  .scratch = scratch, .scores = scores, .kern = ckls_active_kernels()};
    atomic_init(&j.next, 0);
    ckls_pool_run(j.n_tiles * n_head_kv > 1 ? pool : NULL, attn_task, &j);
    ckls_aligned_free(scores);
    return CKLS_OK;
}

int ckls_attention(ckls_pool *pool, const float *q, const float *k, const float *v, float *out, int64_t n_tok,
                   int64_t pos0, int64_t n_head, int64_t n_head_kv, int64_t head_dim, int64_t kv_stride) {
    if (!q || !k || !v || !out || n_tok < 0 || pos0 < 0 || n_head <= 0 || n_head_kv <= 0 || head_dim <= 0 ||
        n_head % n_head_kv || kv_stride < n_head_kv * head_dim)
        return ckls_fail(CKLS_EINVAL, "attention: bad arguments");
    if (n_tok == 0) return CKLS_OK;
    const int64_t n = pos0 + n_tok; /* K rows -> the block layout, for these positions */
    float *kt = ckls_aligned_alloc(sizeof(float) * (size_t)(n_head_kv * ckls_kt_head_floats(n, head_dim)));
    if (!kt) return ckls_fail(CKLS_ENOMEM, "attention: out of memory");
    ckls_kt_store(kt, n, n_head_kv, head_dim, k, kv_stride, n, 0);
    const int rc = ckls_attention_kt(pool, q, kt, n, v, out, n_tok, pos0, n_head, n_head_kv, head_dim, kv_stride);
    ckls_aligned_free(kt);
    return rc;
}
