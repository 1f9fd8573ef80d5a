/* train_step.c — one LoRA training step over a sequence: forward through the frozen (quantized) model with the
 * adapter, saving what the backward needs in an arena allocated once; mean cross-entropy; backward through
 * every layer into the adapter's A/B gradients. Everything runs on the model's thread pool; nothing is
 * allocated per step.
 *
 * Saved per layer: the two residual inputs (for the norms' backward), both normed inputs (the LoRA A inputs),
 * q/k after RoPE and v (attention backward recomputes the probabilities from them), the attention output,
 * gate/up and the SwiGLU output, and each adapted matrix's x.A^T (for dB). Layer 0's input gradient is never
 * formed: the embeddings are frozen. Gradients collect in a private buffer and are added to the adapter's only
 * when the step completes, so a cancelled step leaves the adapter untouched.
 *
 * Where the time goes (CKLS_TRAIN_PROFILE=1 prints it per step): about four fifths in the products through the
 * frozen weights (forward, the vocabulary projection and dX), all on the GEMM tile; attention (by blocks, on the
 * same tile), the LoRA products and the row-wise passes share the rest. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "backward.h"
#include "lora.h"
#include "model.h"

/* CKLS_TRAIN_PROFILE=1: wall time per kind of op, printed to stderr after each step (for tuning the step) */
enum { P_MM, P_LORA_F, P_ATTN_F, P_ELEM_F, P_LOGITS, P_CE, P_LOGITS_DX, P_DX, P_LORA_B, P_ATTN_B, P_ELEM_B, P_N };
static const char *const P_NAMES[P_N] = {"fwd matmul", "fwd lora", "fwd attn", "fwd elem", "logits", "loss",
                                         "logits dx", "bwd dx", "bwd lora", "bwd attn", "bwd elem"};
static double prof_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
#define PROF(cat, stmt)                                                                                              \
    do {                                                                                                            \
        const double p0_ = t->prof ? prof_now() : 0.0;                                                              \
        stmt;                                                                                                       \
        if (t->prof) t->prof_s[cat] += prof_now() - p0_;                                                            \
    } while (0)

#define N_TARGETS 7
enum { TQ, TK, TV, TO, TGATE, TUP, TDOWN };

struct ckls_train {
    ckls_model *m;
    ckls_lora *a;
    int64_t cap, r;
    float *arena;
    /* saved activations, [n_layer][cap x dim] */
    float *xa, *xb, *h1, *h2, *q, *k, *v, *att, *g, *up, *act, *lu;
    float *xf, *hf, *logits;
    /* backward scratch */
    float *dx, *dh, *dq, *dk, *dv, *datt, *dg, *dup, *du, *at, *bt, *attn_ws, *grads, *ce_loss;
    int64_t *ce_cnt;
    int32_t *pos, *rows, *tgt; /* positions; the counted rows and their targets */
    float *rope_cs, *rope_sn;  /* RoPE's cos/sin per position and frequency, as ckls_rope computes them */
    const volatile int32_t *cancel; /* the running step's flag, polled inside the big products too... */
    int stopped;                    /* ...which set this when they skipped work: the step's result is void */
    int prof;
    double prof_s[P_N];
};

/* The activations' arena: hundreds of MB walked with strides of kilobytes (a token's row in every product), so
 * with 4 KB pages the products spend much of their time on TLB misses. Asked for huge pages where the system
 * grants them on request (Linux, transparent huge pages in "madvise" mode), before the pages are first touched. */
static float *arena_alloc(size_t bytes) {
    const size_t huge = (size_t)2 << 20;
    bytes = (bytes + huge - 1) / huge * huge;
    void *p = NULL;
    if (posix_memalign(&p, huge, bytes) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, bytes, MADV_HUGEPAGE); /* advice only: without it the arena works the same, slower */
#endif
    memset(p, 0, bytes);
    return p;
}

void ckls_train_free(ckls_train *t) {
    if (!t) return;
    free(t->arena);
    ckls_aligned_free(t->pos);
    ckls_aligned_free(t->rows);
    ckls_aligned_free(t->tgt);
    ckls_aligned_free(t->ce_cnt);
    ckls_aligned_free(t->rope_cs);
    ckls_aligned_free(t->rope_sn);
    free(t);
}

ckls_train *ckls_train_create(ckls_model *m, ckls_lora *a, int32_t max_tok) {
    if (!m || !a || max_tok <= 0 || max_tok > (1 << 20)) {
        ckls_fail(CKLS_EINVAL, "train_create: NULL model/adapter or max_tok %d out of range", max_tok);
        return NULL;
    }
    if (ckls_lora_check(a, &m->hp)) return NULL;
    ckls_train *t = calloc(1, sizeof *t);
    if (!t) { ckls_fail(CKLS_ENOMEM, "out of memory"); return NULL; }
    const ckls_hparams *hp = &m->hp;
    const int64_t T = max_tok, L = hp->n_layer, d = hp->n_embd, kv = m->kv_dim, ff = hp->n_ff, V = hp->n_vocab;
    const int64_t r = ckls_lora_rank(a), nth = ckls_pool_threads(m->pool), big = d > ff ? d : ff;
    t->m = m;
    t->a = a;
    t->cap = T;
    t->r = r;
    /* one arena, carved below; sizes in floats, each rounded to 16 (64 B) */
    const int64_t sizes[] = {
        L * T * d, L * T * d, L * T * d, L * T * d, L * T * d, L * T * kv, L * T * kv, L * T * d, L * T * ff,
        L * T * ff, L * T * ff, L * N_TARGETS * T * r,                     /* xa .. lu */
        T * d, T * d, T * V,                                               /* xf hf logits */
        T * d, T * d, T * d, T * kv, T * kv, T * d, T * ff, T * ff, T * r, /* dx dh dq dk dv datt dg dup du */
        big * r, big * r,                                                  /* at bt */
        ckls_attention_backward_scratch((int)nth, T, hp->n_head_kv, m->head_dim),
        ckls_lora_n_params(a), nth};
    float **dst[] = {&t->xa, &t->xb, &t->h1, &t->h2, &t->q, &t->k, &t->v, &t->att, &t->g, &t->up, &t->act, &t->lu,
                     &t->xf, &t->hf, &t->logits, &t->dx, &t->dh, &t->dq, &t->dk, &t->dv, &t->datt, &t->dg, &t->dup,
                     &t->du, &t->at, &t->bt, &t->attn_ws, &t->grads, &t->ce_loss};
    const int n_bufs = (int)(sizeof dst / sizeof *dst);
    _Static_assert(sizeof sizes / sizeof *sizes == sizeof dst / sizeof *dst, "arena table");
    int64_t total = 0;
    for (int i = 0; i < n_bufs; i++) total += (sizes[i] + 15) / 16 * 16;
    t->arena = arena_alloc(sizeof(float) * (size_t)total);
    t->pos = ckls_aligned_alloc(sizeof(int32_t) * (size_t)T);
    t->rows = ckls_aligned_alloc(sizeof(int32_t) * (size_t)T);
    t->tgt = ckls_aligned_alloc(sizeof(int32_t) * (size_t)T);
    t->ce_cnt = ckls_aligned_alloc(sizeof(int64_t) * (size_t)nth);
    const int64_t half = hp->n_rot / 2;
    t->rope_cs = ckls_aligned_alloc(sizeof(float) * (size_t)(T * (half > 0 ? half : 1)));
    t->rope_sn = ckls_aligned_alloc(sizeof(float) * (size_t)(T * (half > 0 ? half : 1)));
    if (!t->arena || !t->pos || !t->rows || !t->tgt || !t->ce_cnt || !t->rope_cs || !t->rope_sn) {
        ckls_train_free(t);
        ckls_fail(CKLS_ENOMEM, "train_create: out of memory for %lld MB of activations",
                  (long long)(total * 4 >> 20));
        return NULL;
    }
    float *p = t->arena;
    for (int i = 0; i < n_bufs; i++) {
        *dst[i] = p;
        p += (sizes[i] + 15) / 16 * 16;
    }
    for (int64_t i = 0; i < T; i++) t->pos[i] = (int32_t)i;
    /* theta_i = pos * base^(-2i/n_rot) by repeated multiplication in float, as ckls_rope and its backward do */
    const float theta_scale = powf(hp->rope_base, -2.0f / (float)hp->n_rot);
    for (int64_t p = 0; p < T; p++) {
        float theta = (float)p;
        for (int64_t i = 0; i < half; i++) {
            t->rope_cs[p * half + i] = cosf(theta);
            t->rope_sn[p * half + i] = sinf(theta);
            theta *= theta_scale;
        }
    }
    const char *pe = getenv("CKLS_TRAIN_PROFILE");
    t->prof = pe && *pe && *pe != '0';
    return t;
}

/* ---- forward pieces ------------------------------------------------------------------------------------------- */
/* f32 activations throughout: the gradient is then exactly that of the dequantized model, and the panel GEMM is
 * faster than quantized dots at training batch sizes */
static void linear(ckls_train *t, const ckls_tensor *w, const float *x, int64_t n, float *y) {
    t->stopped |= ckls_matmul_f32(t->m->pool, w->type, w->data, w->ne1, w->ne0, x, n, y, t->cancel);
}

static float *lora_u(ckls_train *t, int l, int ti) { return t->lu + ((int64_t)l * N_TARGETS + ti) * t->cap * t->r; }

/* y = W.x (+ adapter) for layer l's matrix ti */
static void linear_l(ckls_train *t, int l, int ti, const ckls_tensor *w, const float *x, int64_t n, float *y) {
    PROF(P_MM, linear(t, w, x, n, y));
    ckls_lora_mat a;
    if (ckls_lora_get(t->a, l, ti, &a))
        PROF(P_LORA_F, ckls_lora_fwd(t->m->pool, a.A, a.B, t->r, a.n_in, a.n_out, ckls_lora_scale(t->a), x, n,
                                     lora_u(t, l, ti), y, t->at, t->bt));
}

static void add_bias(float *y, const ckls_tensor *b, int64_t n, int64_t dim) {
    if (!b->data) return;
    const float *bv = b->data;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < dim; j++) y[i * dim + j] += bv[j];
}

/* Row-wise passes (norms, RoPE, SwiGLU, residual adds) split by rows over the pool: each a function of a row range
 * over the fields it names. */
typedef struct ew_job {
    void (*fn)(const struct ew_job *j, int64_t lo, int64_t hi);
    int64_t n, dim; /* rows, floats per row */
    const float *a, *w;
    float *b, *c, *e;
    const ckls_hparams *hp;
    const ckls_model *m;
    const int32_t *pos;
} ew_job;

static void ew_task(void *p, int ith, int nth) {
    const ew_job *j = p;
    const int64_t lo = j->n * ith / nth, hi = j->n * (ith + 1) / nth;
    if (lo < hi) j->fn(j, lo, hi);
}

static void ew_run(ckls_pool *pool, ew_job j) { ckls_pool_run(j.n > 1 ? pool : NULL, ew_task, &j); }

/* b += a (when a is set), then c = rmsnorm(b) * w */
static void ew_add_norm(const ew_job *j, int64_t lo, int64_t hi) {
    const int64_t d = j->dim;
    if (j->a)
        for (int64_t i = lo * d; i < hi * d; i++) j->b[i] += j->a[i];
    ckls_rmsnorm(j->b + lo * d, j->w, j->c + lo * d, hi - lo, d, j->hp->rms_eps);
}

/* RoPE on rows lo..hi of x (n_head heads each) from the tables; sign -1 rotates back (the backward: the rotation
 * is orthogonal, its gradient is the rotation by -theta) */
static void rope_rows(const ew_job *j, float *x, int64_t n_head, int64_t lo, int64_t hi, float sign) {
    const ckls_hparams *hp = j->hp;
    const int64_t hd = j->m->head_dim, half = hp->n_rot / 2;
    const int norm = hp->rope_mode == CKLS_ROPE_NORM;
    const int64_t stride = norm ? 2 : 1, off = norm ? 1 : half;
    for (int64_t t = lo; t < hi; t++) {
        const float *cs = j->a + t * half, *sn = j->w + t * half;
        for (int64_t h = 0; h < n_head; h++) {
            float *v = x + (t * n_head + h) * hd;
            for (int64_t i = 0; i < half; i++) {
                float *pa = v + i * stride, *pb = pa + off;
                const float a = *pa, b = *pb, s = sign * sn[i];
                *pa = a * cs[i] - b * s;
                *pb = a * s + b * cs[i];
            }
        }
    }
}

/* RoPE on q (b) and k (c), forward or back */
static void ew_rope(const ew_job *j, int64_t lo, int64_t hi) {
    rope_rows(j, j->b, j->hp->n_head, lo, hi, 1.0f);
    rope_rows(j, j->c, j->hp->n_head_kv, lo, hi, 1.0f);
}

static void ew_rope_bwd(const ew_job *j, int64_t lo, int64_t hi) {
    rope_rows(j, j->b, j->hp->n_head, lo, hi, -1.0f);
    rope_rows(j, j->c, j->hp->n_head_kv, lo, hi, -1.0f);
}

/* e = silu(b) * c: ckls_swiglu's arithmetic with exp(-b) from the vector exp, a chunk at a time */
static void ew_swiglu(const ew_job *j, int64_t lo, int64_t hi) {
    const ckls_exp_shift_fn ex = ckls_active_kernels()->exp_shift;
    float e[256];
    for (int64_t i0 = lo * j->dim; i0 < hi * j->dim; i0 += 256) {
        const int64_t m = hi * j->dim - i0 < 256 ? hi * j->dim - i0 : 256;
        const float *g = j->b + i0, *u = j->c + i0;
        for (int64_t i = 0; i < m; i++) e[i] = -g[i];
        ex(e, e, m, 0.0f);
        for (int64_t i = 0; i < m; i++) j->e[i0 + i] = g[i] / (1.0f + e[i]) * u[i];
    }
}

/* gradient through e = silu(b) * c: d(gate) into a's buffer (e, in place), d(up) into w's (cast: a scratch) */
static void ew_swiglu_bwd(const ew_job *j, int64_t lo, int64_t hi) {
    const int64_t d = j->dim;
    ckls_swiglu_backward(j->b + lo * d, j->c + lo * d, j->e + lo * d, j->e + lo * d, (float *)j->w + lo * d,
                         (hi - lo) * d);
}

/* gradient through c = rmsnorm(a) * w, in place in c, then added into b (the residual stream's gradient) */
static void ew_norm_bwd_add(const ew_job *j, int64_t lo, int64_t hi) {
    const int64_t d = j->dim;
    ckls_rmsnorm_backward(j->a + lo * d, j->w, j->c + lo * d, j->c + lo * d, NULL, hi - lo, d, j->hp->rms_eps);
    for (int64_t i = lo * d; i < hi * d; i++) j->b[i] += j->c[i];
}

typedef struct {
    const float *logits;
    const int32_t *targets;
    int64_t n, V, total;
    float *loss;
    int64_t *cnt;
    float *dlogits;
} ce_job;

static void ce_task(void *p, int ith, int nth) {
    ce_job *j = p;
    const int64_t lo = j->n * ith / nth, hi = j->n * (ith + 1) / nth;
    int64_t local = 0;
    for (int64_t i = lo; i < hi; i++) local += j->targets[i] >= 0;
    /* ckls_cross_entropy divides by its own count: scale its gradient back to 1 / total */
    ckls_cross_entropy(j->logits + lo * j->V, j->targets + lo, hi - lo, j->V,
                       j->total ? (float)local / (float)j->total : 0.0f, &j->loss[ith], j->dlogits + lo * j->V,
                       &j->cnt[ith]);
}

/* ---- the step -------------------------------------------------------------------------------------------------- */
int ckls_train_step(ckls_train *t, const int32_t *tokens, const int32_t *targets, int32_t n_tok, float grad_scale,
                    const volatile int32_t *cancel, float *loss) {
    if (!t || !tokens || !targets || !loss) return ckls_fail(CKLS_EINVAL, "train_step: NULL argument");
    if (n_tok <= 0 || n_tok > t->cap)
        return ckls_fail(CKLS_ERANGE, "train_step: %d tokens, the state holds 1..%lld", n_tok, (long long)t->cap);
    ckls_model *m = t->m;
    const ckls_hparams *hp = &m->hp;
    for (int32_t i = 0; i < n_tok; i++)
        if (tokens[i] < 0 || tokens[i] >= hp->n_vocab || targets[i] >= hp->n_vocab)
            return ckls_fail(CKLS_EINVAL, "train_step: token %d / target %d at %d outside the vocabulary of %d",
                             tokens[i], targets[i], i, hp->n_vocab);
    if (ckls_lora_check(t->a, hp)) return CKLS_EINVAL;
    ckls_pool *pool = m->pool;
    const int64_t n = n_tok, T = t->cap, d = hp->n_embd, kv = m->kv_dim, ff = hp->n_ff, hd = m->head_dim;
    const int64_t V = hp->n_vocab, L = hp->n_layer, r = t->r;
    const float eps = hp->rms_eps, scale = ckls_lora_scale(t->a);
#define AT(buf, l, dim) ((buf) + (int64_t)(l) * T * (dim))
#define CANCELLED() (t->stopped || (cancel && *cancel))
    t->cancel = cancel;
    t->stopped = 0;

    /* forward */
    const int64_t emb_rb = ckls_row_bytes(m->tok_embd.type, d);
    const ckls_type_info *emb = ckls_type_get(m->tok_embd.type);
    for (int64_t i = 0; i < n; i++)
        emb->to_float((const char *)m->tok_embd.data + (int64_t)tokens[i] * emb_rb, AT(t->xa, 0, d) + i * d, d);
#define EW(...) ew_run(pool, (ew_job){.n = n, .hp = hp, .m = m, .pos = t->pos, __VA_ARGS__})
    PROF(P_ELEM_F, EW(.fn = ew_add_norm, .dim = d, .b = t->xa, .w = m->layers[0].attn_norm.data, .c = t->h1));
    for (int l = 0; l < L; l++) {
        if (CANCELLED()) return ckls_fail(CKLS_ECANCELLED, "cancelled");
        const ckls_layer *Ly = &m->layers[l];
        float *xa = AT(t->xa, l, d), *xb = AT(t->xb, l, d), *h1 = AT(t->h1, l, d), *h2 = AT(t->h2, l, d);
        float *q = AT(t->q, l, d), *k = AT(t->k, l, kv), *v = AT(t->v, l, kv), *att = AT(t->att, l, d);
        float *g = AT(t->g, l, ff), *up = AT(t->up, l, ff), *act = AT(t->act, l, ff);
        float *x_next = l + 1 < L ? AT(t->xa, l + 1, d) : t->xf;
        linear_l(t, l, TQ, &Ly->wq, h1, n, q);
        linear_l(t, l, TK, &Ly->wk, h1, n, k);
        linear_l(t, l, TV, &Ly->wv, h1, n, v);
        add_bias(q, &Ly->bq, n, d);
        add_bias(k, &Ly->bk, n, kv);
        add_bias(v, &Ly->bv, n, kv);
        PROF(P_ELEM_F, EW(.fn = ew_rope, .dim = d, .b = q, .c = k, .a = t->rope_cs, .w = t->rope_sn));
        PROF(P_ATTN_F, ckls_attention_fwd(pool, q, k, v, att, n, hp->n_head, hp->n_head_kv, hd, t->attn_ws));
        linear_l(t, l, TO, &Ly->wo, att, n, xb);
        PROF(P_ELEM_F, EW(.fn = ew_add_norm, .dim = d, .a = xa, .b = xb, .w = Ly->ffn_norm.data, .c = h2));
        linear_l(t, l, TGATE, &Ly->w_gate, h2, n, g);
        linear_l(t, l, TUP, &Ly->w_up, h2, n, up);
        PROF(P_ELEM_F, EW(.fn = ew_swiglu, .dim = ff, .b = g, .c = up, .e = act));
        linear_l(t, l, TDOWN, &Ly->w_down, act, n, x_next);
        /* the residual add, fused with the next norm: the next layer's attention norm, or the output norm */
        PROF(P_ELEM_F, EW(.fn = ew_add_norm, .dim = d, .a = xb, .b = x_next,
                          .w = l + 1 < L ? m->layers[l + 1].attn_norm.data : m->output_norm.data,
                          .c = l + 1 < L ? AT(t->h1, l + 1, d) : t->hf));
    }
    if (CANCELLED()) return ckls_fail(CKLS_ECANCELLED, "cancelled");

    /* logits, loss and their gradient only for the rows that have a target (FIM samples count only the middle):
     * the vocabulary projection is the largest matrix, forward and backward */
    int64_t nc = 0;
    for (int64_t i = 0; i < n; i++)
        if (targets[i] >= 0) {
            memcpy(t->datt + nc * d, t->hf + i * d, sizeof(float) * (size_t)d); /* datt: free until the backward */
            t->rows[nc] = (int32_t)i;
            t->tgt[nc++] = targets[i];
        }
    if (nc == 0) { /* nothing to learn from: no loss, no gradient */
        *loss = 0.0f;
        return CKLS_OK;
    }
    PROF(P_LOGITS, linear(t, &m->output, t->datt, nc, t->logits));
    if (CANCELLED()) return ckls_fail(CKLS_ECANCELLED, "cancelled");
    const int nth = ckls_pool_threads(pool);
    for (int i = 0; i < nth; i++) t->ce_loss[i] = 0.0f, t->ce_cnt[i] = 0;
    ce_job cj = {.logits = t->logits, .targets = t->tgt, .n = nc, .V = V, .total = nc, .loss = t->ce_loss,
                 .cnt = t->ce_cnt, .dlogits = t->logits};
    PROF(P_CE, ckls_pool_run(pool, ce_task, &cj));
    double lsum = 0.0;
    for (int i = 0; i < nth; i++) lsum += (double)t->ce_loss[i] * (double)t->ce_cnt[i];
    *loss = (float)(lsum / (double)nc);

    /* backward */
    memset(t->grads, 0, sizeof(float) * (size_t)ckls_lora_n_params(t->a));
    PROF(P_LOGITS_DX, t->stopped |= ckls_matmul_dx(pool, m->output.type, m->output.data, V, d, t->logits, nc, t->dq,
                                                   0, cancel));
    if (CANCELLED()) return ckls_fail(CKLS_ECANCELLED, "cancelled");
    memset(t->dh, 0, sizeof(float) * (size_t)(n * d));
    for (int64_t i = 0; i < nc; i++) memcpy(t->dh + (int64_t)t->rows[i] * d, t->dq + i * d, sizeof(float) * (size_t)d);
    ckls_rmsnorm_backward(t->xf, m->output_norm.data, t->dh, t->dx, NULL, n, d, eps);
    for (int l = (int)L - 1; l >= 0; l--) {
        if (CANCELLED()) return ckls_fail(CKLS_ECANCELLED, "cancelled");
        const ckls_layer *Ly = &m->layers[l];
        float *xa = AT(t->xa, l, d), *xb = AT(t->xb, l, d), *h1 = AT(t->h1, l, d), *h2 = AT(t->h2, l, d);
        float *q = AT(t->q, l, d), *k = AT(t->k, l, kv), *v = AT(t->v, l, kv), *att = AT(t->att, l, d);
        float *g = AT(t->g, l, ff), *up = AT(t->up, l, ff), *act = AT(t->act, l, ff);
        ckls_lora_mat a;
#define LORA_BWD(ti, x, dy, dxp)                                                                                    \
    if (ckls_lora_get(t->a, l, ti, &a))                                                                            \
        PROF(P_LORA_B, ckls_lora_bwd(pool, a.A, a.B, ckls_lora_grads_at(t->a, t->grads, l, ti, 0),                                \
                      ckls_lora_grads_at(t->a, t->grads, l, ti, 1), r, a.n_in, a.n_out, scale, x, lora_u(t, l, ti), \
                      dy, n, t->du, dxp))

        /* FFN: x_next = xb + W_down.act; dy = dx */
        PROF(P_DX, t->stopped |= ckls_matmul_dx(pool, Ly->w_down.type, Ly->w_down.data, d, ff, t->dx, n, t->dg, 0,
                                                cancel));
        LORA_BWD(TDOWN, act, t->dx, t->dg);
        PROF(P_ELEM_B, EW(.fn = ew_swiglu_bwd, .dim = ff, .b = g, .c = up, .e = t->dg, .w = t->dup));
        PROF(P_DX, t->stopped |= ckls_matmul_dx(pool, Ly->w_gate.type, Ly->w_gate.data, ff, d, t->dg, n, t->dh, 0,
                                                cancel));
        LORA_BWD(TGATE, h2, t->dg, t->dh);
        PROF(P_DX, t->stopped |= ckls_matmul_dx(pool, Ly->w_up.type, Ly->w_up.data, ff, d, t->dup, n, t->dh, 1,
                                                cancel));
        LORA_BWD(TUP, h2, t->dup, t->dh);
        PROF(P_ELEM_B, EW(.fn = ew_norm_bwd_add, .dim = d, .a = xb, .w = Ly->ffn_norm.data, .c = t->dh, .b = t->dx));

        if (CANCELLED()) return ckls_fail(CKLS_ECANCELLED, "cancelled");
        /* attention: xb = xa + W_o.att */
        PROF(P_DX, t->stopped |= ckls_matmul_dx(pool, Ly->wo.type, Ly->wo.data, d, d, t->dx, n, t->datt, 0, cancel));
        LORA_BWD(TO, att, t->dx, t->datt);
        PROF(P_ATTN_B, ckls_attention_bwd(pool, q, k, v, t->datt, t->dq, t->dk, t->dv, n, hp->n_head, hp->n_head_kv, hd,
                                          t->attn_ws));
        PROF(P_ELEM_B, EW(.fn = ew_rope_bwd, .dim = d, .b = t->dq, .c = t->dk, .a = t->rope_cs, .w = t->rope_sn));
        if (l == 0) { /* frozen embeddings below: only the adapter's gradients are wanted */
            LORA_BWD(TQ, h1, t->dq, NULL);
            LORA_BWD(TK, h1, t->dk, NULL);
            LORA_BWD(TV, h1, t->dv, NULL);
            break;
        }
        PROF(P_DX, t->stopped |= ckls_matmul_dx(pool, Ly->wq.type, Ly->wq.data, d, d, t->dq, n, t->dh, 0, cancel));
        LORA_BWD(TQ, h1, t->dq, t->dh);
        PROF(P_DX, t->stopped |= ckls_matmul_dx(pool, Ly->wk.type, Ly->wk.data, kv, d, t->dk, n, t->dh, 1, cancel));
        LORA_BWD(TK, h1, t->dk, t->dh);
        PROF(P_DX, t->stopped |= ckls_matmul_dx(pool, Ly->wv.type, Ly->wv.data, kv, d, t->dv, n, t->dh, 1, cancel));
        LORA_BWD(TV, h1, t->dv, t->dh);
        PROF(P_ELEM_B, EW(.fn = ew_norm_bwd_add, .dim = d, .a = xa, .w = Ly->attn_norm.data, .c = t->dh, .b = t->dx));
#undef LORA_BWD
    }
    if (CANCELLED()) return ckls_fail(CKLS_ECANCELLED, "cancelled");
    float *ga = ckls_lora_buffer(t->a, CKLS_LORA_GRADS);
    const int64_t np = ckls_lora_n_params(t->a);
    for (int64_t i = 0; i < np; i++) ga[i] += grad_scale * t->grads[i];
    if (t->prof) {
        double sum = 0.0;
        for (int i = 0; i < P_N; i++) sum += t->prof_s[i];
        fprintf(stderr, "train_step %d tokens, %.1f ms in ops:", n_tok, sum * 1e3);
        for (int i = 0; i < P_N; i++) fprintf(stderr, " %s %.1f", P_NAMES[i], t->prof_s[i] * 1e3);
        fprintf(stderr, "\n");
        memset(t->prof_s, 0, sizeof t->prof_s);
    }
    return CKLS_OK;
#undef AT
#undef CANCELLED
#undef EW
}
