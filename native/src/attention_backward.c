/* attention_backward.c — causal GQA self-attention of a training sequence, forward and backward, by blocks on the
 * ISA's f32 GEMM tile; and the reference backward a row at a time (attention_backward_body.h).
 *
 * Probabilities are never stored (T x T per head would dominate the activation memory): the forward keeps each
 * row's log-sum-exp, and the backward recomputes P = exp(scale Q.K^T - lse) a block at a time, as
 * FlashAttention-2's backward does. */
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

#define ROWS 48    /* forward: query rows per work item, a multiple of the 6-row register tile */
#define BLK 48     /* backward: query rows and keys per block (even: a block's bf16 pairs are the sequence's) */

/* Every operand of the block products is laid out for the tile. Rows over keys (K^T, V^T, the forward's P) are
 * padded to 16 floats past a multiple of 16: at 1,024 tokens an unpadded row is 4 KB, so the tile's walk down a
 * column hits one L1 set. Q, dO, K (and V for the forward's P.V) are packed per head, d floats a row, for the same
 * reason (their rows in the model's layout are 2 KB apart). */
static int64_t key_ld(int64_t n_tok) { return (n_tok + 15) / 16 * 16 + 16; }

/* Scratch: K^T and V^T (kv rows of key_ld floats), K (backward) or V (forward) packed (n_tok * kv), Q and dO packed
 * (n_tok * qd each), D = rowsum(dO * O) per head and row (n_tok * n_head), the bf16 copies, dQ, dK and dV per query
 * head (n_tok * qd each), then per thread two BLK x BLK blocks (P, dS), the key block's dK, dV (BLK * d each) and
 * the blocks' bf16 pairs (the forward's P rows instead). */
typedef struct {
    ckls_gemm_tile_fn tile;
    ckls_softmax_fn softmax;
    ckls_exp_shift_fn exp_shift;
    ckls_transpose_fn transpose;
    const float *q, *k, *v, *o, *dout, *pack; /* pack: the matrix packed per kv head into kp (K bwd, V fwd) */
    float *dq, *dk, *dv, *out, *lse;
    int64_t n_tok, n_head, n_head_kv, d, ld, n_items;
    float *kt, *vt, *kp, *qp, *op, *D, *dqh, *dkh, *dvh, *threads;
    /* bf16 (the products on gemm_tile_bf16): K^T, V^T as pairs down their rows (kt2, vt2); K (bwd) or V (fwd), Q
     * and dO as pairs down the sequence (kp2, qp2, op2) and Q, dO as pairs along their rows (qr, or) */
    ckls_gemm_tile_bf16_fn tile16;
    ckls_bf16_conv_fn rows16, pairs16;
    uint32_t *kt2, *vt2, *kp2, *qp2, *op2, *qr, *or;
    atomic_llong next;
} attn_job;

/* per thread: the backward's P and dS, dK and dV, and with bf16 P and dS as pairs down the rows and dS along them;
 * the forward's P rows, and with bf16 P along its rows */
static int64_t thread_floats(int64_t n_tok, int64_t n_head, int64_t d) {
    const int64_t bwd = 2 * BLK * BLK + 2 * BLK * d + 3 * BLK * BLK / 2;
    const int64_t fwd = ROWS * key_ld(n_tok) * 3 / 2;
    return bwd > fwd ? bwd : fwd;
}

/* the bf16 copies: sizes in uint32 */
static int64_t bf16_floats(int64_t n_tok, int64_t n_head, int64_t n_head_kv, int64_t d) {
    const int64_t dp = (d + 1) / 2, tp = (n_tok + 1) / 2;
    return 2 * n_head_kv * dp * key_ld(n_tok) + n_head_kv * tp * d + 2 * n_head * (tp * d + n_tok * dp);
}

static float *thread_area(const attn_job *j, int ith) {
    return j->threads + (int64_t)ith * thread_floats(j->n_tok, j->n_head, j->d);
}

/* K^T, V^T (backward), and the per-head packed copies; D for the backward */
static void pack_task(void *p, int ith, int nth) {
    attn_job *j = p;
    const int64_t kv = j->n_head_kv * j->d, qs = j->n_head * j->d, c0 = kv * ith / nth, c1 = kv * (ith + 1) / nth;
    const int64_t T = j->n_tok, d = j->d;
    /* column c of K (kv head c / d, dim c % d) becomes row c of K^T */
    j->transpose(j->k + c0, T, c1 - c0, kv, j->kt + c0 * j->ld, j->ld);
    if (j->vt) j->transpose(j->v + c0, T, c1 - c0, kv, j->vt + c0 * j->ld, j->ld);
    const int64_t t0 = T * ith / nth, t1 = T * (ith + 1) / nth;
    const size_t row = sizeof(float) * (size_t)d;
    for (int64_t t = t0; t < t1; t++) {
        for (int64_t g = 0; g < j->n_head_kv; g++) memcpy(j->kp + (g * T + t) * d, j->pack + t * kv + g * d, row);
        for (int64_t h = 0; h < j->n_head; h++) {
            memcpy(j->qp + (h * T + t) * d, j->q + t * qs + h * d, row);
            if (!j->dout) continue;
            const float *go = j->dout + t * qs + h * d, *o = j->o + t * qs + h * d;
            memcpy(j->op + (h * T + t) * d, go, row);
            double s = 0.0; /* D = sum_s P dP = dO . O, in double as the reference's row sum */
            for (int64_t i = 0; i < d; i++) s += (double)go[i] * o[i];
            j->D[h * T + t] = (float)s;
        }
    }
}

/* the bf16 copies of the packed operands, a head per thread at a time */
static void pack16_task(void *p, int ith, int nth) {
    attn_job *j = p;
    const int64_t T = j->n_tok, d = j->d, ld = j->ld, dp = (d + 1) / 2, tp = (T + 1) / 2;
    for (int64_t g = ith; g < j->n_head_kv; g += nth) {
        j->pairs16(j->kt + g * d * ld, d, T, ld, j->kt2 + g * dp * ld, ld);
        if (j->vt) j->pairs16(j->vt + g * d * ld, d, T, ld, j->vt2 + g * dp * ld, ld);
        j->pairs16(j->kp + g * T * d, T, d, d, j->kp2 + g * tp * d, d);
    }
    for (int64_t h = ith; h < j->n_head; h += nth) {
        j->rows16(j->qp + h * T * d, T, d, d, j->qr + h * T * dp, dp);
        if (!j->dout) continue;
        j->pairs16(j->qp + h * T * d, T, d, d, j->qp2 + h * tp * d, d);
        j->rows16(j->op + h * T * d, T, d, d, j->or + h * T * dp, dp);
        j->pairs16(j->op + h * T * d, T, d, d, j->op2 + h * tp * d, d);
    }
}

/* The backward by key blocks (FlashAttention-2), a query head per work item: for each block of BLK keys, against
 * every query block at or after it,
 *   S = scale Q_i.K_j^T, P = exp(S - lse_i) (causal), dP = dO_i.V_j^T, dS = P (dP - D_i),
 *   dV_j += P^T.dO_i,  dK_j += scale dS^T.Q_i,  dQ_i += scale dS.K_j.
 * dK_j, dV_j stay in the thread's two small blocks until the key block ends; dQ_i adds up over the key blocks in
 * their order, in the head's own packed copy. So every sum runs in one order whatever thread takes which head and
 * however many threads run (the integer mode's roundings to bf16 and Q8_0 would turn run-to-run differences of
 * the last bit into differences of 0.5% in the gradient). */
static void bwd_task(void *p, int ith, int nth) {
    attn_job *j = p;
    const int64_t kv = j->n_head_kv * j->d, group = j->n_head / j->n_head_kv, T = j->n_tok, d = j->d, ld = j->ld;
    const int64_t nb = (T + BLK - 1) / BLK;
    const float scale = 1.0f / sqrtf((float)d);
    const int64_t dp = (d + 1) / 2, tp = (T + 1) / 2;
    float *P = thread_area(j, ith), *dS = P + BLK * BLK, *dKa = dS + BLK * BLK, *dVa = dKa + BLK * d;
    uint32_t *P2 = (uint32_t *)(dVa + BLK * d), *S2 = P2 + BLK * BLK / 2, *Sr = S2 + BLK * BLK / 2;
    for (;;) {
        const int64_t h = atomic_fetch_add(&j->next, 1);
        if (h >= j->n_head) break;
        const int64_t g = h / group; /* the kv head */
        float *dqh = j->dqh + h * T * d;
        /* dK, dV: straight to the model's layout, or per query head when the group's heads add up */
        float *dk = group == 1 ? j->dk + g * d : j->dkh + h * T * d;
        float *dv = group == 1 ? j->dv + g * d : j->dvh + h * T * d;
        const int64_t dks = group == 1 ? kv : d;
        memset(dqh, 0, sizeof(float) * (size_t)(T * d));
        for (int64_t jb = 0; jb < nb; jb++) {
            const int64_t s0 = jb * BLK, nk = T - s0 < BLK ? T - s0 : BLK;
            memset(dKa, 0, sizeof(float) * (size_t)(2 * BLK * d));
            for (int64_t ib = jb; ib < nb; ib++) {
                const int64_t t0 = ib * BLK, m = T - t0 < BLK ? T - t0 : BLK;
                const float *qi = j->qp + (h * T + t0) * d, *oi = j->op + (h * T + t0) * d;
                const float *lse = j->lse + h * T + t0, *D = j->D + h * T + t0;
                if (j->tile16) {
                    j->tile16(m, nk, dp, scale, j->qr + (h * T + t0) * dp, dp, 1, j->kt2 + g * dp * ld + s0, ld, 0, P,
                              BLK);
                    j->tile16(m, nk, dp, 1.0f, j->or + (h * T + t0) * dp, dp, 1, j->vt2 + g * dp * ld + s0, ld, 0, dS,
                              BLK);
                } else {
                    j->tile(m, nk, d, scale, qi, d, 1, j->kt + g * d * ld + s0, ld, 0, P, BLK);
                    j->tile(m, nk, d, 1.0f, oi, d, 1, j->vt + g * d * ld + s0, ld, 0, dS, BLK);
                }
                for (int64_t r = 0; r < m; r++) {
                    float *pr = P + r * BLK, *sr = dS + r * BLK;
                    j->exp_shift(pr, pr, nk, lse[r]);
                    if (ib == jb) /* the diagonal block: key s0 + c is masked past row t0 + r = s0 + r */
                        for (int64_t c = r + 1; c < nk; c++) pr[c] = 0.0f;
                    for (int64_t c = 0; c < nk; c++) sr[c] = pr[c] * (sr[c] - D[r]);
                    if (t0 + r == 0) sr[0] = 0.0f; /* one key: P = 1 whatever S, so dS = 0 (not dP - D's rounding) */
                }
                if (j->tile16) { /* t0, s0 are even: a block's pairs are the sequence's */
                    const int64_t mp = (m + 1) / 2, nkp = (nk + 1) / 2;
                    j->pairs16(P, m, nk, BLK, P2, BLK);
                    j->tile16(nk, d, mp, 1.0f, P2, 1, BLK, j->op2 + (h * tp + t0 / 2) * d, d, 1, dVa, d);
                    j->pairs16(dS, m, nk, BLK, S2, BLK);
                    j->tile16(nk, d, mp, scale, S2, 1, BLK, j->qp2 + (h * tp + t0 / 2) * d, d, 1, dKa, d);
                    j->rows16(dS, m, nk, BLK, Sr, BLK / 2);
                    j->tile16(m, d, nkp, scale, Sr, BLK / 2, 1, j->kp2 + (g * tp + s0 / 2) * d, d, 1, dqh + t0 * d, d);
                    continue;
                }
                j->tile(nk, d, m, 1.0f, P, 1, BLK, oi, d, 1, dVa, d);
                j->tile(nk, d, m, scale, dS, 1, BLK, qi, d, 1, dKa, d);
                j->tile(m, d, nk, scale, dS, BLK, 1, j->kp + (g * T + s0) * d, d, 1, dqh + t0 * d, d);
            }
            for (int64_t c = 0; c < nk; c++) {
                memcpy(dk + (s0 + c) * dks, dKa + c * d, sizeof(float) * (size_t)d);
                memcpy(dv + (s0 + c) * dks, dVa + c * d, sizeof(float) * (size_t)d);
            }
        }
    }
}

/* dQ into the model's layout; dK, dV too where a group's query heads add up, in head order */
static void reduce_task(void *p, int ith, int nth) {
    attn_job *j = p;
    const int64_t T = j->n_tok, d = j->d, qs = j->n_head * d, kv = j->n_head_kv * d, group = j->n_head / j->n_head_kv;
    const int64_t t0 = T * ith / nth, t1 = T * (ith + 1) / nth;
    for (int64_t t = t0; t < t1; t++) {
        for (int64_t h = 0; h < j->n_head; h++)
            memcpy(j->dq + t * qs + h * d, j->dqh + (h * T + t) * d, sizeof(float) * (size_t)d);
        if (group == 1) continue;
        for (int64_t g = 0; g < j->n_head_kv; g++) {
            float *dk = j->dk + t * kv + g * d, *dv = j->dv + t * kv + g * d;
            for (int64_t h = g * group; h < (g + 1) * group; h++) {
                const float *sk = j->dkh + (h * T + t) * d, *sv = j->dvh + (h * T + t) * d;
                for (int64_t i = 0; i < d; i++) {
                    dk[i] = h == g * group ? sk[i] : dk[i] + sk[i];
                    dv[i] = h == g * group ? sv[i] : dv[i] + sv[i];
                }
            }
        }
    }
}

int64_t ckls_attention_backward_scratch(int nth, int64_t n_tok, int64_t n_head, int64_t n_head_kv,
                                        int64_t head_dim) {
    const int64_t kv = n_head_kv * head_dim, qd = n_head * head_dim;
    return 2 * kv * key_ld(n_tok) + n_tok * kv + 2 * n_tok * qd + n_tok * n_head +
           bf16_floats(n_tok, n_head, n_head_kv, head_dim) + 3 * n_tok * qd +
           (int64_t)nth * thread_floats(n_tok, n_head, head_dim);
}

static void job_init(attn_job *j, const float *q, const float *k, const float *v, float *lse, int64_t n_tok,
                     int64_t n_head, int64_t n_head_kv, int64_t head_dim, int bf16, float *scratch) {
    const ckls_isa_kernels *kr = ckls_active_kernels();
    const int64_t kv = n_head_kv * head_dim, qd = n_head * head_dim, ld = key_ld(n_tok);
    *j = (attn_job){.tile = kr->gemm_tile, .softmax = kr->softmax, .exp_shift = kr->exp_shift,
                    .transpose = kr->transpose, .q = q, .k = k, .v = v, .lse = lse, .n_tok = n_tok,
                    .n_head = n_head, .n_head_kv = n_head_kv, .d = head_dim, .ld = ld, .kt = scratch,
                    .vt = scratch + kv * ld, .kp = scratch + 2 * kv * ld, .qp = scratch + 2 * kv * ld + n_tok * kv};
    j->op = j->qp + n_tok * qd;
    j->D = j->op + n_tok * qd;
    const int64_t dp = (head_dim + 1) / 2, tp = (n_tok + 1) / 2;
    j->kt2 = (uint32_t *)(j->D + n_tok * n_head);
    j->vt2 = j->kt2 + n_head_kv * dp * ld;
    j->kp2 = j->vt2 + n_head_kv * dp * ld;
    j->qp2 = j->kp2 + n_head_kv * tp * head_dim;
    j->op2 = j->qp2 + n_head * tp * head_dim;
    j->qr = j->op2 + n_head * tp * head_dim;
    j->or = j->qr + n_tok * n_head * dp;
    j->dqh = (float *)(j->or + n_tok * n_head * dp);
    j->dkh = j->dqh + n_tok * qd;
    j->dvh = j->dkh + n_tok * qd;
    j->threads = j->dvh + n_tok * qd;
    if (bf16 && kr->gemm_tile_bf16) {
        j->tile16 = kr->gemm_tile_bf16;
        j->rows16 = kr->bf16_rows;
        j->pairs16 = kr->bf16_pairs;
    }
    atomic_init(&j->next, 0);
}

void ckls_attention_bwd(ckls_pool *pool, const float *q, const float *k, const float *v, const float *out,
                        const float *lse, const float *dout, float *dq, float *dk, float *dv, int64_t n_tok,
                        int64_t n_head, int64_t n_head_kv, int64_t head_dim, int bf16, float *scratch) {
    attn_job *j = &(attn_job){0};
    job_init(j, q, k, v, (float *)lse, n_tok, n_head, n_head_kv, head_dim, bf16, scratch);
    j->o = out;
    j->dout = dout;
    j->dq = dq;
    j->dk = dk;
    j->dv = dv;
    j->pack = k;
    ckls_pool_run(pool, pack_task, j);
    if (j->tile16) ckls_pool_run(pool, pack16_task, j);
    ckls_pool_run(pool, bwd_task, j);
    ckls_pool_run(pool, reduce_task, j);
}

/* ---- the forward, by blocks of query rows: S = scale Q_b.K^T, P = softmax (causal; lse kept), O_b = P.V -------- */
static void fwd_task(void *p, int ith, int nth) {
    attn_job *j = p;
    const int64_t qs = j->n_head * j->d, group = j->n_head / j->n_head_kv, T = j->n_tok, d = j->d, ld = j->ld;
    const int64_t n_blocks = (T + ROWS - 1) / ROWS;
    const float scale = 1.0f / sqrtf((float)d);
    float *P = thread_area(j, ith);
    uint32_t *Pr = (uint32_t *)(P + ROWS * ld);
    const int64_t dp = (d + 1) / 2, tp = (T + 1) / 2;
    for (;;) {
        const int64_t it = atomic_fetch_add(&j->next, 1);
        if (it >= j->n_items) break;
        /* a head's blocks one after another, so its K^T and V (half a MB at 1,024 tokens) stay in L2 across items;
         * within a head the late rows, which cost most, first */
        const int64_t blk = n_blocks - 1 - it % n_blocks, h = it / n_blocks;
        const int64_t t0 = blk * ROWS, t1 = t0 + ROWS < T ? t0 + ROWS : T, m = t1 - t0, nk = t1;
        const int64_t g = h / group;
        if (j->tile16)
            j->tile16(m, nk, dp, scale, j->qr + (h * T + t0) * dp, dp, 1, j->kt2 + g * dp * ld, ld, 0, P, ld);
        else
            j->tile(m, nk, d, scale, j->qp + (h * T + t0) * d, d, 1, j->kt + g * d * ld, ld, 0, P, ld);
        for (int64_t i = 0; i < m; i++) {
            float *pr = P + i * ld;
            const int64_t n_kv = t0 + i + 1;
            j->lse[h * T + t0 + i] = j->softmax(pr, n_kv);
            for (int64_t s = n_kv; s < nk; s++) pr[s] = 0.0f;
        }
        if (j->tile16) {
            j->rows16(P, m, nk, ld, Pr, ld / 2);
            j->tile16(m, d, (nk + 1) / 2, 1.0f, Pr, ld / 2, 1, j->kp2 + g * tp * d, d, 0, j->out + t0 * qs + h * d, qs);
        } else {
            j->tile(m, d, nk, 1.0f, P, ld, 1, j->kp + g * T * d, d, 0, j->out + t0 * qs + h * d, qs);
        }
    }
}

void ckls_attention_fwd(ckls_pool *pool, const float *q, const float *k, const float *v, float *out, float *lse,
                        int64_t n_tok, int64_t n_head, int64_t n_head_kv, int64_t head_dim, int bf16, float *scratch) {
    attn_job *j = &(attn_job){0};
    job_init(j, q, k, v, lse, n_tok, n_head, n_head_kv, head_dim, bf16, scratch);
    j->vt = NULL; /* the forward needs K^T and V packed */
    j->pack = v;
    j->out = out;
    j->n_items = (n_tok + ROWS - 1) / ROWS * n_head;
    ckls_pool_run(pool, pack_task, j);
    if (j->tile16) ckls_pool_run(pool, pack16_task, j);
    ckls_pool_run(pool, fwd_task, j);
}

int ckls_attention_backward(ckls_pool *pool, const float *q, const float *k, const float *v, const float *dout,
                            float *dq, float *dk, float *dv, int64_t n_tok, int64_t n_head, int64_t n_head_kv,
                            int64_t head_dim) {
    if (!q || !k || !v || !dout || !dq || !dk || !dv || n_tok < 0 || n_head <= 0 || n_head_kv <= 0 ||
        head_dim <= 0 || n_head % n_head_kv)
        return ckls_fail(CKLS_EINVAL, "attention_backward: bad arguments");
    if (n_tok == 0) return CKLS_OK;
    /* the forward's output and log-sum-exps first, as a training step saves them */
    const int64_t n = ckls_attention_backward_scratch(ckls_pool_threads(pool), n_tok, n_head, n_head_kv, head_dim);
    const int64_t qd = n_tok * n_head * head_dim;
    float *scratch = ckls_aligned_alloc(sizeof(float) * (size_t)(n + qd + n_tok * n_head));
    if (!scratch) return ckls_fail(CKLS_ENOMEM, "attention_backward: out of memory");
    float *out = scratch + n, *lse = out + qd;
    ckls_attention_fwd(pool, q, k, v, out, lse, n_tok, n_head, n_head_kv, head_dim, 0, scratch);
    ckls_attention_bwd(pool, q, k, v, out, lse, dout, dq, dk, dv, n_tok, n_head, n_head_kv, head_dim, 0, scratch);
    ckls_aligned_free(scratch);
    return CKLS_OK;
}
