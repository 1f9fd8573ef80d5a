/* attention.c — causal grouped-query attention over the KV cache. Work items are (token, KV head): the query
 * heads that share a KV head are handled together so each cached K/V row is read once for all of them. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "internal.h"

typedef struct {
    const float *q, *k, *v;
    float *out;
    int64_t n_tok, pos0, n_head, n_head_kv, head_dim, kv_stride;
    float *scores; /* per thread: group * (pos0 + n_tok) floats */
    atomic_llong next;
    const ckls_isa_kernels *kern;
} attn_job;

static void attn_task(void *p, int ith, int nth) {
    attn_job *j = p;
    const int64_t group = j->n_head / j->n_head_kv, d = j->head_dim;
    float *sc = j->scores + (int64_t)ith * group * (j->pos0 + j->n_tok);
    const float scale = 1.0f / sqrtf((float)d);
    for (;;) {
        const int64_t item = atomic_fetch_add(&j->next, 1);
        if (item >= j->n_tok * j->n_head_kv) break;
        const int64_t t = item / j->n_head_kv, kvh = item % j->n_head_kv;
        const int64_t off = (t * j->n_head + kvh * group) * d; /* the group's heads are adjacent */
        j->kern->attn_group(j->q + off, group, j->k + kvh * d, j->v + kvh * d, j->kv_stride, j->pos0 + t + 1, d,
                            scale, sc, j->out + off);
    }
}

int ckls_attention(ckls_pool *pool, const float *q, const float *k, const float *v, float *out, int64_t n_tok,
                   int64_t pos0, int64_t n_head, int64_t n_head_kv, int64_t head_dim, int64_t kv_stride) {
    if (!q || !k || !v || !out || n_tok < 0 || pos0 < 0 || n_head <= 0 || n_head_kv <= 0 || head_dim <= 0 ||
        n_head % n_head_kv || kv_stride < n_head_kv * head_dim)
        return ckls_fail(CKLS_EINVAL, "attention: bad arguments");
    if (n_tok == 0) return CKLS_OK;
    const int nth = ckls_pool_threads(pool);
    const int64_t group = n_head / n_head_kv;
    float *scores = ckls_aligned_alloc(sizeof(float) * (size_t)(nth * group * (pos0 + n_tok)));
    if (!scores) return ckls_fail(CKLS_ENOMEM, "attention: out of memory");
    attn_job j = {.q = q, .k = k, .v = v, .out = out, .n_tok = n_tok, .pos0 = pos0, .n_head = n_head,
                  .n_head_kv = n_head_kv, .head_dim = head_dim, .kv_stride = kv_stride, .scores = scores,
                  .kern = ckls_active_kernels()};
    atomic_init(&j.next, 0);
    ckls_pool_run(n_tok * n_head_kv > 1 ? pool : NULL, attn_task, &j);
    ckls_aligned_free(scores);
    return CKLS_OK;
}
