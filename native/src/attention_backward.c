/* attention_backward.c — backward of causal GQA self-attention over one training sequence.
 *
 * Work items are (query head, block of query rows), biggest blocks first; probabilities are recomputed per
 * block, never stored (T x T per head would dominate the activation memory). Query heads of one group add into
 * the same dK/dV rows, so each thread accumulates dK/dV privately and the copies are summed at the end: the
 * result does not depend on which thread took which item. */
#include <math.h>
#include <stdatomic.h>

#include "backward.h"

static inline float dot_ref(const float *a, const float *b, int64_t d) {
    float s = 0.0f;
    for (int64_t i = 0; i < d; i++) s += a[i] * b[i];
    return s;
}

static inline void axpy_ref(float *y, float alpha, const float *x, int64_t d) {
    for (int64_t i = 0; i < d; i++) y[i] += alpha * x[i];
}

#define ATTN_BWD_NAME ckls_attn_bwd_ref_impl
#define ATTN_DOT dot_ref
#define ATTN_AXPY axpy_ref
#include "attention_backward_body.h"

void ckls_attn_bwd_ref(const float *q, const float *k, const float *v, const float *dout, float *dq, float *dk,
                       float *dv, int64_t t0, int64_t t1, int64_t qs, int64_t ks, int64_t d, float scale, float *sc,
                       float *dp) {
    ckls_attn_bwd_ref_impl(q, k, v, dout, dq, dk, dv, t0, t1, qs, ks, d, scale, sc, dp);
}

#define ROWS 48    /* query rows per work item: the block products' M, a multiple of the 6-row register tile */
#define MAX_TH 512 /* the pool's limit */

/* The driver works on blocks of query rows with the ISA's GEMM tile, so the dots of every row against all keys
 * become register-blocked products (the row kernel above stays as the reference it is tested against):
 *   S = Q_b.K^T, P = softmax(scale S) (causal), dP = dO_b.V^T, dS = scale P (dP - rowsum(P dP)),
 *   dQ_b = dS.K,  dK += dS^T.Q_b,  dV += P^T.dO_b.
 * Scratch: K^T and V^T (d x n_tok per KV head), per thread t >= 1 a private dK, dV pair (2 * n_tok * kv floats)
 * at (t-1), then per thread P and dS (ROWS x n_tok each). */
typedef struct {
    ckls_gemm_tile_fn tile;
    ckls_softmax_bwd_fn softmax_bwd;
    ckls_transpose_fn transpose;
    const float *q, *k, *v, *dout;
    float *dq, *dk, *dv;
    int64_t n_tok, n_head, n_head_kv, d, n_blocks;
    float *kt, *vt, *copies, *rows;
    unsigned char used[MAX_TH];
    atomic_llong next;
} bwd_job;

static void transpose_task(void *p, int ith, int nth) {
    bwd_job *j = p;
    const int64_t kv = j->n_head_kv * j->d, c0 = kv * ith / nth, c1 = kv * (ith + 1) / nth;
    /* column c of K (kv head c / d, dim c % d) becomes row c of K^T */
    j->transpose(j->k + c0, j->n_tok, c1 - c0, kv, j->kt + c0 * j->n_tok, j->n_tok);
    if (j->vt) j->transpose(j->v + c0, j->n_tok, c1 - c0, kv, j->vt + c0 * j->n_tok, j->n_tok);
}

static void bwd_task(void *p, int ith, int nth) {
    bwd_job *j = p;
    const int64_t kv = j->n_head_kv * j->d, qs = j->n_head * j->d, group = j->n_head / j->n_head_kv, T = j->n_tok;
    const float scale = 1.0f / sqrtf((float)j->d);
    float *P = j->rows + (int64_t)ith * 2 * ROWS * T, *dS = P + ROWS * T;
    float *dk = j->dk, *dv = j->dv;
    if (ith) {
        dk = j->copies + (int64_t)(ith - 1) * 2 * T * kv;
        dv = dk + T * kv;
    }
    for (;;) {
        const int64_t it = atomic_fetch_add(&j->next, 1);
        if (it >= j->n_blocks * j->n_head) break;
        if (ith && !j->used[ith]) {
            memset(dk, 0, sizeof(float) * (size_t)(2 * T * kv));
            j->used[ith] = 1;
        }
        const int64_t blk = j->n_blocks - 1 - it / j->n_head, h = it % j->n_head; /* late rows cost most: first */
        const int64_t t0 = blk * ROWS, t1 = t0 + ROWS < T ? t0 + ROWS : T, m = t1 - t0, nk = t1;
        const int64_t kvo = (h / group) * j->d;
        const float *qb = j->q + t0 * qs + h * j->d, *ob = j->dout + t0 * qs + h * j->d;
        j->tile(m, nk, j->d, scale, qb, qs, 1, j->kt + kvo * T, T, 0, P, T);
        j->tile(m, nk, j->d, 1.0f, ob, qs, 1, j->vt + kvo * T, T, 0, dS, T);
        for (int64_t i = 0; i < m; i++) { /* softmax over keys 0..t0+i, as the forward computes it */
            float *pr = P + i * T, *dr = dS + i * T;
            const int64_t n_kv = t0 + i + 1;
            j->softmax_bwd(pr, dr, n_kv, scale);
            for (int64_t s = n_kv; s < nk; s++) pr[s] = dr[s] = 0.0f; /* masked keys carry nothing back */
        }
        j->tile(m, j->d, nk, 1.0f, dS, T, 1, j->k + kvo, kv, 0, j->dq + t0 * qs + h * j->d, qs);
        j->tile(nk, j->d, m, 1.0f, dS, 1, T, qb, qs, 1, dk + kvo, kv);
        j->tile(nk, j->d, m, 1.0f, P, 1, T, ob, qs, 1, dv + kvo, kv);
    }
}

static void reduce_task(void *p, int ith, int nth) {
    bwd_job *j = p;
    const int64_t n = j->n_tok * j->n_head_kv * j->d;
    const int64_t lo = n * ith / nth, hi = n * (ith + 1) / nth;
    for (int th = 1; th < MAX_TH; th++) {
        if (!j->used[th]) continue;
        const float *pk = j->copies + (int64_t)(th - 1) * 2 * n, *pv = pk + n;
        for (int64_t i = lo; i < hi; i++) {
            j->dk[i] += pk[i];
            j->dv[i] += pv[i];
        }
    }
}

int64_t ckls_attention_backward_scratch(int nth, int64_t n_tok, int64_t n_head_kv, int64_t head_dim) {
    const int64_t kv = n_head_kv * head_dim;
    return 2 * n_tok * kv + (int64_t)(nth - 1) * 2 * n_tok * kv + (int64_t)nth * 2 * ROWS * n_tok;
}

void ckls_attention_bwd(ckls_pool *pool, const float *q, const float *k, const float *v, const float *dout, float *dq,
                        float *dk, float *dv, int64_t n_tok, int64_t n_head, int64_t n_head_kv, int64_t head_dim,
                        float *scratch) {
    const int nth = ckls_pool_threads(pool);
    const int64_t kv = n_head_kv * head_dim;
    bwd_job *j = &(bwd_job){.tile = ckls_bwd_active()->gemm_tile, .softmax_bwd = ckls_bwd_active()->softmax_bwd,
                            .transpose = ckls_bwd_active()->transpose, .q = q, .k = k, .v = v, .dout = dout, .dq = dq,
                            .dk = dk, .dv = dv, .n_tok = n_tok, .n_head = n_head, .n_head_kv = n_head_kv,
                            .d = head_dim, .n_blocks = (n_tok + ROWS - 1) / ROWS, .kt = scratch,
                            .vt = scratch + n_tok * kv, .copies = scratch + 2 * n_tok * kv,
                            .rows = scratch + 2 * n_tok * kv + (int64_t)(nth - 1) * 2 * n_tok * kv};
    memset(dk, 0, sizeof(float) * (size_t)(n_tok * kv));
    memset(dv, 0, sizeof(float) * (size_t)(n_tok * kv));
    atomic_init(&j->next, 0);
    ckls_pool_run(pool, transpose_task, j);
    ckls_pool_run(pool, bwd_task, j);
    int any = 0;
    for (int th = 1; th < nth; th++) any |= j->used[th];
    if (any) ckls_pool_run(pool, reduce_task, j);
}

int ckls_attention_backward(ckls_pool *pool, const float *q, const float *k, const float *v, const float *dout,
                            float *dq, float *dk, float *dv, int64_t n_tok, int64_t n_head, int64_t n_head_kv,
                            int64_t head_dim) {
    if (!q || !k || !v || !dout || !dq || !dk || !dv || n_tok < 0 || n_head <= 0 || n_head_kv <= 0 ||
        head_dim <= 0 || n_head % n_head_kv)
        return ckls_fail(CKLS_EINVAL, "attention_backward: bad arguments");
    if (n_tok == 0) return CKLS_OK;
    const int64_t n = ckls_attention_backward_scratch(ckls_pool_threads(pool), n_tok, n_head_kv, head_dim);
    float *scratch = ckls_aligned_alloc(sizeof(float) * (size_t)n);
    if (!scratch) return ckls_fail(CKLS_ENOMEM, "attention_backward: out of memory");
    ckls_attention_bwd(pool, q, k, v, dout, dq, dk, dv, n_tok, n_head, n_head_kv, head_dim, scratch);
    ckls_aligned_free(scratch);
    return CKLS_OK;
}

/* ---- the training forward, by the same blocks: S = scale Q_b.K^T, P = softmax (causal), O_b = P.V ---------------- */
typedef struct {
    ckls_gemm_tile_fn tile;
    ckls_softmax_fn softmax;
    const float *q, *v;
    float *out, *kt, *rows;
    int64_t n_tok, n_head, n_head_kv, d, n_blocks;
    atomic_llong next;
} fwd_job;

static void fwd_task(void *p, int ith, int nth) {
    fwd_job *j = p;
    const int64_t kv = j->n_head_kv * j->d, qs = j->n_head * j->d, group = j->n_head / j->n_head_kv, T = j->n_tok;
    const float scale = 1.0f / sqrtf((float)j->d);
    float *P = j->rows + (int64_t)ith * 2 * ROWS * T;
    for (;;) {
        const int64_t it = atomic_fetch_add(&j->next, 1);
        if (it >= j->n_blocks * j->n_head) break;
        const int64_t blk = j->n_blocks - 1 - it / j->n_head, h = it % j->n_head;
        const int64_t t0 = blk * ROWS, t1 = t0 + ROWS < T ? t0 + ROWS : T, m = t1 - t0, nk = t1;
        const int64_t kvo = (h / group) * j->d;
        j->tile(m, nk, j->d, scale, j->q + t0 * qs + h * j->d, qs, 1, j->kt + kvo * T, T, 0, P, T);
        for (int64_t i = 0; i < m; i++) {
            float *pr = P + i * T;
            const int64_t n_kv = t0 + i + 1;
            j->softmax(pr, n_kv);
            for (int64_t s = n_kv; s < nk; s++) pr[s] = 0.0f;
        }
        j->tile(m, j->d, nk, 1.0f, P, T, 1, j->v + kvo, kv, 0, j->out + t0 * qs + h * j->d, qs);
    }
}

void ckls_attention_fwd(ckls_pool *pool, const float *q, const float *k, const float *v, float *out, int64_t n_tok,
                        int64_t n_head, int64_t n_head_kv, int64_t head_dim, float *scratch) {
    const int nth = ckls_pool_threads(pool);
    const int64_t kv = n_head_kv * head_dim;
    bwd_job tj = {.transpose = ckls_bwd_active()->transpose, .k = k, .n_tok = n_tok, .n_head_kv = n_head_kv,
                  .d = head_dim, .kt = scratch}; /* the forward needs K^T only */
    ckls_pool_run(pool, transpose_task, &tj);
    fwd_job *j = &(fwd_job){.tile = ckls_bwd_active()->gemm_tile, .softmax = ckls_bwd_active()->softmax, .q = q, .v = v, .out = out, .kt = scratch,
                            .rows = scratch + 2 * n_tok * kv + (int64_t)(nth - 1) * 2 * n_tok * kv, .n_tok = n_tok,
                            .n_head = n_head, .n_head_kv = n_head_kv, .d = head_dim,
                            .n_blocks = (n_tok + ROWS - 1) / ROWS};
    atomic_init(&j->next, 0);
    ckls_pool_run(pool, fwd_task, j);
}
