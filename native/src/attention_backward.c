/* attention_backward.c — backward of causal GQA self-attention over one training sequence.
 *
 * Work items are (query head, block of query rows), biggest blocks first; probabilities are recomputed per
 * block, never stored (T x T per head would dominate the activation memory). */
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

/* Every operand of the block products is laid out for the tile. Rows over keys (K^T, V^T, P, dS) are padded to
 * 16 floats past a multiple of 16: at 1,024 tokens an unpadded row is 4 KB, so the tile's walk down a column hits
 * one L1 set. K (for dQ), V (for the forward's P.V), the block's Q and dO rows and the dK/dV accumulators are
 * packed per head, d floats a row, for the same reason (their rows in the model's layout are 2 KB apart).
 * Measured on one Zen 3 core at 1,024 tokens, d 64: the five products 60–70 → 85–95 GFLOP/s. */
static int64_t key_ld(int64_t n_tok) { return (n_tok + 15) / 16 * 16 + 16; }

/* The driver works on blocks of query rows with the ISA's GEMM tile, so the dots of every row against all keys
 * become register-blocked products (the row kernel above stays as the reference it is tested against):
 *   S = Q_b.K^T, P = softmax(scale S) (causal), dP = dO_b.V^T, dS = scale P (dP - rowsum(P dP)),
 *   dQ_b = dS.K,  dK += dS^T.Q_b,  dV += P^T.dO_b.
 * Query heads of one group add into the same dK/dV rows, so each thread accumulates into its own packed copy
 * and the copies are summed, in thread order, into the model's layout at the end.
 * Scratch: K^T and V^T (kv rows of key_ld floats), K or V packed (n_tok * kv), then per thread its dK, dV
 * copies (2 * n_tok * kv), P and dS (ROWS rows of key_ld) and the block's Q and dO rows (ROWS * d each). */
typedef struct {
    ckls_gemm_tile_fn tile;
    ckls_softmax_fn softmax;
    ckls_softmax_bwd_fn softmax_bwd;
    ckls_transpose_fn transpose;
    const float *q, *k, *v, *dout, *pack; /* pack: the matrix copied per head into kp (K backward, V forward) */
    float *dq, *dk, *dv, *out;
    int64_t n_tok, n_head, n_head_kv, d, n_blocks, ld;
    float *kt, *vt, *kp, *threads;
    unsigned char used[MAX_TH];
    atomic_llong next;
} attn_job;

static float *thread_area(const attn_job *j, int ith) {
    return j->threads + (int64_t)ith * (2 * j->n_tok * j->n_head_kv * j->d + 2 * ROWS * j->ld + 2 * ROWS * j->d);
}

static void pack_task(void *p, int ith, int nth) {
    attn_job *j = p;
    const int64_t kv = j->n_head_kv * j->d, c0 = kv * ith / nth, c1 = kv * (ith + 1) / nth, T = j->n_tok;
    /* column c of K (kv head c / d, dim c % d) becomes row c of K^T */
    j->transpose(j->k + c0, T, c1 - c0, kv, j->kt + c0 * j->ld, j->ld);
    if (j->vt) j->transpose(j->v + c0, T, c1 - c0, kv, j->vt + c0 * j->ld, j->ld);
    const int64_t t0 = T * ith / nth, t1 = T * (ith + 1) / nth;
    for (int64_t h = 0; h < j->n_head_kv; h++)
        for (int64_t t = t0; t < t1; t++)
            memcpy(j->kp + (h * T + t) * j->d, j->pack + t * kv + h * j->d, sizeof(float) * (size_t)j->d);
}

/* the block's rows of one head, packed d floats a row */
static void pack_rows(float *dst, const float *src, int64_t m, int64_t stride, int64_t d) {
    for (int64_t i = 0; i < m; i++) memcpy(dst + i * d, src + i * stride, sizeof(float) * (size_t)d);
}

static void bwd_task(void *p, int ith, int nth) {
    attn_job *j = p;
    const int64_t kv = j->n_head_kv * j->d, qs = j->n_head * j->d, group = j->n_head / j->n_head_kv, T = j->n_tok;
    const int64_t d = j->d, ld = j->ld;
    const float scale = 1.0f / sqrtf((float)d);
    float *dk = thread_area(j, ith), *dv = dk + T * kv, *P = dv + T * kv, *dS = P + ROWS * ld, *qb = dS + ROWS * ld,
          *ob = qb + ROWS * d;
    for (;;) {
        const int64_t it = atomic_fetch_add(&j->next, 1);
        if (it >= j->n_blocks * j->n_head) break;
        if (!j->used[ith]) {
            memset(dk, 0, sizeof(float) * (size_t)(2 * T * kv));
            j->used[ith] = 1;
        }
        const int64_t blk = j->n_blocks - 1 - it / j->n_head, h = it % j->n_head; /* late rows cost most: first */
        const int64_t t0 = blk * ROWS, t1 = t0 + ROWS < T ? t0 + ROWS : T, m = t1 - t0, nk = t1;
        const int64_t g = h / group; /* the kv head */
        pack_rows(qb, j->q + t0 * qs + h * d, m, qs, d);
        pack_rows(ob, j->dout + t0 * qs + h * d, m, qs, d);
        j->tile(m, nk, d, scale, qb, d, 1, j->kt + g * d * ld, ld, 0, P, ld);
        j->tile(m, nk, d, 1.0f, ob, d, 1, j->vt + g * d * ld, ld, 0, dS, ld);
        for (int64_t i = 0; i < m; i++) { /* softmax over keys 0..t0+i, as the forward computes it */
            float *pr = P + i * ld, *dr = dS + i * ld;
            const int64_t n_kv = t0 + i + 1;
            j->softmax_bwd(pr, dr, n_kv, scale);
            for (int64_t s = n_kv; s < nk; s++) pr[s] = dr[s] = 0.0f; /* masked keys carry nothing back */
        }
        j->tile(m, d, nk, 1.0f, dS, ld, 1, j->kp + g * T * d, d, 0, j->dq + t0 * qs + h * d, qs);
        j->tile(nk, d, m, 1.0f, dS, 1, ld, qb, d, 1, dk + g * T * d, d);
        j->tile(nk, d, m, 1.0f, P, 1, ld, ob, d, 1, dv + g * T * d, d);
    }
}

/* dK, dV in the model's layout = the threads' packed copies summed in thread order */
static void reduce_task(void *p, int ith, int nth) {
    attn_job *j = p;
    const int64_t T = j->n_tok, d = j->d, kv = j->n_head_kv * d, t0 = T * ith / nth, t1 = T * (ith + 1) / nth;
    int first = 1;
    for (int th = 0; th < MAX_TH; th++) {
        if (!j->used[th]) continue;
        const float *ck = thread_area(j, th), *cv = ck + T * kv;
        for (int64_t t = t0; t < t1; t++)
            for (int64_t g = 0; g < j->n_head_kv; g++) {
                const float *sk = ck + (g * T + t) * d, *sv = cv + (g * T + t) * d;
                float *dk = j->dk + t * kv + g * d, *dv = j->dv + t * kv + g * d;
                for (int64_t i = 0; i < d; i++) {
                    dk[i] = first ? sk[i] : dk[i] + sk[i];
                    dv[i] = first ? sv[i] : dv[i] + sv[i];
                }
            }
        first = 0;
    }
}

int64_t ckls_attention_backward_scratch(int nth, int64_t n_tok, int64_t n_head_kv, int64_t head_dim) {
    const int64_t kv = n_head_kv * head_dim, ld = key_ld(n_tok);
    return 2 * kv * ld + n_tok * kv + (int64_t)nth * (2 * n_tok * kv + 2 * ROWS * ld + 2 * ROWS * head_dim);
}

static void job_init(attn_job *j, const float *q, const float *k, const float *v, int64_t n_tok, int64_t n_head,
                     int64_t n_head_kv, int64_t head_dim, float *scratch) {
    const ckls_isa_kernels *kr = ckls_active_kernels();
    const int64_t kv = n_head_kv * head_dim, ld = key_ld(n_tok);
    *j = (attn_job){.tile = kr->gemm_tile, .softmax = kr->softmax, .softmax_bwd = kr->softmax_bwd,
                      .transpose = kr->transpose, .q = q, .k = k, .v = v, .n_tok = n_tok, .n_head = n_head,
                      .n_head_kv = n_head_kv, .d = head_dim, .n_blocks = (n_tok + ROWS - 1) / ROWS, .ld = ld,
                      .kt = scratch, .vt = scratch + kv * ld, .kp = scratch + 2 * kv * ld,
                      .threads = scratch + 2 * kv * ld + n_tok * kv};
    atomic_init(&j->next, 0);
}

void ckls_attention_bwd(ckls_pool *pool, const float *q, const float *k, const float *v, const float *dout, float *dq,
                        float *dk, float *dv, int64_t n_tok, int64_t n_head, int64_t n_head_kv, int64_t head_dim,
                        float *scratch) {
    attn_job *j = &(attn_job){0};
    job_init(j, q, k, v, n_tok, n_head, n_head_kv, head_dim, scratch);
    j->dout = dout;
    j->dq = dq;
    j->dk = dk;
    j->dv = dv;
    j->pack = k;
    ckls_pool_run(pool, pack_task, j);
    ckls_pool_run(pool, bwd_task, j);
    ckls_pool_run(pool, reduce_task, j); /* n_tok >= 1: some thread took an item */
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
static void fwd_task(void *p, int ith, int nth) {
    attn_job *j = p;
    const int64_t kv = j->n_head_kv * j->d, qs = j->n_head * j->d, group = j->n_head / j->n_head_kv, T = j->n_tok;
    const int64_t d = j->d, ld = j->ld;
    const float scale = 1.0f / sqrtf((float)d);
    float *P = thread_area(j, ith) + 2 * T * kv, *qb = P + 2 * ROWS * ld;
    for (;;) {
        const int64_t it = atomic_fetch_add(&j->next, 1);
        if (it >= j->n_blocks * j->n_head) break;
        const int64_t blk = j->n_blocks - 1 - it / j->n_head, h = it % j->n_head;
        const int64_t t0 = blk * ROWS, t1 = t0 + ROWS < T ? t0 + ROWS : T, m = t1 - t0, nk = t1;
        const int64_t g = h / group;
        pack_rows(qb, j->q + t0 * qs + h * d, m, qs, d);
        j->tile(m, nk, d, scale, qb, d, 1, j->kt + g * d * ld, ld, 0, P, ld);
        for (int64_t i = 0; i < m; i++) {
            float *pr = P + i * ld;
            const int64_t n_kv = t0 + i + 1;
            j->softmax(pr, n_kv);
            for (int64_t s = n_kv; s < nk; s++) pr[s] = 0.0f;
        }
        j->tile(m, d, nk, 1.0f, P, ld, 1, j->kp + g * T * d, d, 0, j->out + t0 * qs + h * d, qs);
    }
}

void ckls_attention_fwd(ckls_pool *pool, const float *q, const float *k, const float *v, float *out, int64_t n_tok,
                        int64_t n_head, int64_t n_head_kv, int64_t head_dim, float *scratch) {
    attn_job *j = &(attn_job){0};
    job_init(j, q, k, v, n_tok, n_head, n_head_kv, head_dim, scratch);
    j->vt = NULL; /* the forward needs K^T and V packed */
    j->pack = v;
    j->out = out;
    ckls_pool_run(pool, pack_task, j);
    ckls_pool_run(pool, fwd_task, j);
}
