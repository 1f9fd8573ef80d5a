/* attention.c — causal grouped-query attention over the KV cache, one (token, head) pair per work item. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "internal.h"

typedef struct {
    const float *q, *k, *v;
    float *out;
    int64_t n_tok, pos0, n_head, n_head_kv, head_dim, kv_stride;
    float *scores; /* one row of (pos0 + n_tok) floats per thread */
    atomic_llong next;
    ckls_vec_dot_fn dot;
} attn_job;

static void attn_task(void *p, int ith, int nth) {
    attn_job *j = p;
    const int64_t n_kv = j->pos0 + j->n_tok;
    float *sc = j->scores + (int64_t)ith * n_kv;
    const int64_t group = j->n_head / j->n_head_kv;
    const float scale = 1.0f / sqrtf((float)j->head_dim);
    const int64_t d = j->head_dim;
    for (;;) {
        const int64_t item = atomic_fetch_add(&j->next, 1);
        if (item >= j->n_tok * j->n_head) break;
        const int64_t t = item / j->n_head, h = item % j->n_head, kvh = h / group;
        const int64_t last = j->pos0 + t; /* causal: keys 0..last */
        const float *qv = j->q + (t * j->n_head + h) * d;
        float mx = -INFINITY;
        for (int64_t s = 0; s <= last; s++) {
            float dotv;
            j->dot(d, &dotv, j->k + s * j->kv_stride + kvh * d, qv);
            sc[s] = dotv * scale;
            mx = sc[s] > mx ? sc[s] : mx;
        }
        double sum = 0.0;
        for (int64_t s = 0; s <= last; s++) {
            sc[s] = expf(sc[s] - mx);
            sum += sc[s];
        }
        const float inv = (float)(1.0 / sum);
        float *o = j->out + (t * j->n_head + h) * d;
        for (int64_t i = 0; i < d; i++) o[i] = 0.0f;
        for (int64_t s = 0; s <= last; s++) {
            const float w = sc[s] * inv;
            const float *vv = j->v + s * j->kv_stride + kvh * d;
            for (int64_t i = 0; i < d; i++) o[i] += w * vv[i];
        }
    }
}

int ckls_attention(ckls_pool *pool, const float *q, const float *k, const float *v, float *out, int64_t n_tok,
                   int64_t pos0, int64_t n_head, int64_t n_head_kv, int64_t head_dim, int64_t kv_stride) {
    if (!q || !k || !v || !out || n_tok < 0 || pos0 < 0 || n_head <= 0 || n_head_kv <= 0 || head_dim <= 0 ||
        n_head % n_head_kv || kv_stride < n_head_kv * head_dim)
        return ckls_fail(CKLS_EINVAL, "attention: bad arguments");
    if (n_tok == 0) return CKLS_OK;
    const int nth = ckls_pool_threads(pool);
    float *scores = ckls_aligned_alloc(sizeof(float) * (size_t)(nth * (pos0 + n_tok)));
    if (!scores) return ckls_fail(CKLS_ENOMEM, "attention: out of memory");
    attn_job j = {.q = q, .k = k, .v = v, .out = out, .n_tok = n_tok, .pos0 = pos0, .n_head = n_head,
                  .n_head_kv = n_head_kv, .head_dim = head_dim, .kv_stride = kv_stride, .scores = scores};
    j.dot = ckls_active_kernels()->vec_dot[CKLS_TYPE_F32];
    atomic_init(&j.next, 0);
    ckls_pool_run(pool, attn_task, &j);
    ckls_aligned_free(scores);
    return CKLS_OK;
}
