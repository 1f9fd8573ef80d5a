/* train_step.c — one LoRA training step over a sequence: forward through the frozen (quantized) model with the
 * adapter, saving what the backward needs in an arena allocated once; mean cross-entropy; backward through
 * every layer into the adapter's A/B gradients. Everything runs on the model's thread pool; nothing is
 * allocated per step.
 *
 * Saved per layer: the two residual inputs (for the norms' backward), both normed inputs (the LoRA A inputs),
 * q/k after RoPE and v, the attention output and its rows' log-sum-exps (attention backward recomputes the
 * probabilities from them), gate/up and the SwiGLU output, and each adapted matrix's x.A^T (for dB). Layer 0's
 * input gradient is never formed: the embeddings are frozen. Gradients collect in a private buffer and are added to
 * the adapter's only when the step completes, so a cancelled step leaves the adapter untouched.
 *
 * Where the time goes (CKLS_TRAIN_PROFILE=1 prints it per step): exact, about four fifths in the products through
 * the frozen weights (forward, the vocabulary projection and dX), all on the f32 GEMM tile; otherwise
 * (ckls_train_set_exact(t, 0)) those run on eval's integer kernels (on AVX2 against 7-bit activations: a7_acts),
 * all but the vocabulary projection's dX, which takes int16 products (gemm_i16.c: AVX2) or, where the CPU has
 * AVX512-BF16, bf16 products (f32 sums) as attention does: then the integer products are
 * about two fifths of a step, attention a fifth. Where bf16 products run on matrix tiles (AMX-BF16: bf16_tiles),
 * every frozen matrix's products take them instead of the integer kernels (bf16 copies of W and W^T, 4 bytes a
 * weight; the integer kernels' Q8_0 blocks need float work every 32 multiply-adds, the tiles' f32 sums none). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "backward.h"
#include "lora.h"
#include "matmul.h"
#include "model.h"
#include "rope.h"

/* CKLS_TRAIN_PROFILE=1: wall time per kind of op, printed to stderr after each step (for tuning the step) */
enum { P_MM, P_LORA_F, P_ATTN_F, P_ELEM_F, P_LOGITS, P_CE, P_LOGITS_DX, P_DX, P_LORA_B, P_ATTN_B, P_ELEM_B, P_N };
static const char *const P_NAMES[P_N] = {"fwd matmul", "fwd lora", "fwd attn", "fwd elem", "logits", "loss",
                                         "logits dx", "bwd dx", "bwd lora", "bwd attn", "bwd elem"};
static double prof_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

struct ckls_train {
    ckls_model *m;
    ckls_lora *a;
    int64_t cap, r;
    float *arena;
    /* saved activations, [n_layer][cap x dim] */
    float *xa, *xb, *h1, *h2, *q, *k, *v, *att, *g, *up, *act, *lu;
    float *lse; /* [n_layer][n_head x cap]: attention's log-sum-exp per row */
    float *xf, *hf, *logits;
    /* backward scratch */
    float *dx, *dh, *dq, *dk, *dv, *datt, *dg, *dup, *du, *bt, *lora_ws, *attn_ws, *grads, *ce_loss;
    int64_t *ce_cnt;
    int32_t *pos, *rows, *tgt; /* positions; the counted rows and their targets */
    float *rope_cs, *rope_sn;  /* RoPE's cos/sin per position and frequency, as ckls_rope computes them */
    void *xq;  /* exact == 0: the activations (or output gradients) of one product, quantized */
    int32_t *a7_off; /* ...and where they are 7-bit (a7_acts), their block terms (ckls_quantize_acts_a7) */
    float *a7_xd;
    const float *xq_of; /* ...of these activations (x of the last forward product: q/k/v and gate/up share one) */
    int xq_type;
    void **wt, **wt_packed; /* exact == 0: each frozen matrix transposed, in Q8_0, and its interleaved copy */
    float *dxs;              /* exact == 0: an accumulated dX before it is added */
    /* exact == 0 with bf16 products, per matrix (NULL: none): W^T (forward; on bf16 tiles only) and W (dX; on bf16
     * tiles every matrix, otherwise the vocabulary projection alone) in bf16 pairs; dY's rows as pairs */
    uint32_t **wf2, **wd2, *dyb;
    /* exact == 0 without bf16 products: the vocabulary projection's W^T in int16 (its dX: gemm_i16.c), and scratch */
    block_i16x8 *wv16;
    void *dy16;
    int exact; /* 1: the forward in f32 over dequantized weights (the gradient of the dequantized model) */
    int bf16;  /* exact == 0 and the model has quantized matrices: attention's products in bf16 where the CPU can */
    const volatile int32_t *cancel; /* the running step's flag, polled inside the big products too... */
    int stopped;                    /* ...which set this when they skipped work: the step's result is void */
    int failed;                     /* the first product that failed (< 0, its message set), else 0 */
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

/* matrix i of the model: 0 .. L*7-1 the layers' (q k v o gate up down), L*7 the vocabulary projection */
static const ckls_tensor *matrix(const ckls_model *m, int i) {
    const int n = m->hp.n_layer * N_TARGETS;
    return i == n ? &m->output : model_matrix(&m->layers[i / N_TARGETS], i % N_TARGETS);
}

/* the copies of exact == 0 (transpose_matrix, bf16_matrix), if made */
static void free_transposed(ckls_train *t) {
    const int n = t->m->hp.n_layer * N_TARGETS + 1;
    for (int i = 0; i < n; i++) {
        if (t->wt) ckls_aligned_free(t->wt[i]);
        if (t->wt_packed) ckls_aligned_free(t->wt_packed[i]);
        if (t->wf2) ckls_aligned_free(t->wf2[i]);
        if (t->wd2) ckls_aligned_free(t->wd2[i]);
    }
    free(t->wt);
    free(t->wt_packed);
    free(t->wf2);
    free(t->wd2);
    t->wt = t->wt_packed = NULL;
    t->wf2 = t->wd2 = NULL;
    ckls_aligned_free(t->dyb);
    t->dyb = NULL;
    ckls_aligned_free(t->wv16);
    ckls_aligned_free(t->dy16);
    t->wv16 = NULL;
    t->dy16 = NULL;
}

/* Frozen matrix i dequantized (*f: n_out rows of n_in) and transposed (*ft: n_in rows of n_out); both malloc'ed,
 * NULL on failure (the caller frees them either way). */
static int dequantize_both(const ckls_tensor *w, float **f, float **ft) {
    const int64_t n_out = w->ne1, n_in = w->ne0, rb = ckls_row_bytes(w->type, n_in);
    *f = malloc(sizeof(float) * (size_t)(n_out * n_in));
    *ft = malloc(sizeof(float) * (size_t)(n_out * n_in));
    int rc = *f && *ft ? CKLS_OK : ckls_fail(CKLS_ENOMEM, "train: out of memory copying weights");
    for (int64_t r = 0; !rc && r < n_out; r++) rc = ckls_dequantize_row(w->type, (const char *)w->data + r * rb,
                                                                        *f + r * n_in, n_in);
    for (int64_t r0 = 0; !rc && r0 < n_out; r0 += 32) /* in 32 x n_in strips: both sides stay in cache */
        for (int64_t c = 0; c < n_in; c++)
            for (int64_t r = r0; r < r0 + 32 && r < n_out; r++) (*ft)[c * n_out + r] = (*f)[r * n_in + c];
    return rc;
}

/* W^T of a frozen matrix (n_in rows of n_out), requantized to Q8_0, and its interleaved copy: dX = dY.W then
 * runs on the integer kernels as a forward product does. Left NULL where n_out is not a whole number of Q8_0
 * blocks (that matrix's dX stays on the f32 path). */
static int transpose_matrix(ckls_train *t, int i) {
    const ckls_tensor *w = matrix(t->m, i);
    const int64_t n_out = w->ne1, n_in = w->ne0;
    if (n_out % 32) return CKLS_OK;
    float *f, *ft;
    int rc = dequantize_both(w, &f, &ft);
    t->wt[i] = ckls_aligned_alloc((size_t)(n_in * ckls_row_bytes(CKLS_TYPE_Q8_0, n_out)));
    if (!rc && !t->wt[i]) rc = ckls_fail(CKLS_ENOMEM, "train: out of memory transposing weights");
    if (!rc) rc = ckls_quantize_rows(CKLS_TYPE_Q8_0, ft, t->wt[i], n_in, n_out, NULL);
    free(f);
    free(ft);
    if (rc) return rc;
    int64_t bytes;
    t->wt_packed[i] = ckls_repack_matrix(t->m->pool, CKLS_TYPE_Q8_0, t->wt[i], n_in, n_out, &bytes);
    return bytes < 0 ? ckls_fail(CKLS_ENOMEM, "train: out of memory repacking weights") : CKLS_OK;
}

/* Matrix i in bf16 pairs both ways (ckls_bf16_weight_pairs): W^T's for the forward, y = x.W^T as the dX product of
 * W^T, and W's for dX. */
static int bf16_matrix(ckls_train *t, int i) {
    const ckls_tensor *w = matrix(t->m, i);
    const int64_t n_out = w->ne1, n_in = w->ne0;
    float *f, *ft;
    int rc = dequantize_both(w, &f, &ft);
    if (!rc && !(t->wf2[i] = ckls_bf16_weight_pairs(CKLS_TYPE_F32, ft, n_in, n_out))) rc = CKLS_ENOMEM;
    if (!rc && !(t->wd2[i] = ckls_bf16_weight_pairs(CKLS_TYPE_F32, f, n_out, n_in))) rc = CKLS_ENOMEM;
    free(f);
    free(ft);
    return rc;
}

/* bf16 copies of every quantized matrix, both ways, where the CPU multiplies bf16 on tiles and they fit
 * TILES_BF16_MAX_BYTES (4 bytes a weight: 130 MB for the shipped model); 0 = the integer kernels instead */
#define TILES_BF16_MAX_BYTES ((int64_t)512 << 20)
static int use_bf16_tiles(const ckls_train *t) {
    if (!ckls_active_kernels()->bf16_tiles) return 0;
    int64_t bytes = 0;
    for (int i = 0; i <= t->m->hp.n_layer * N_TARGETS; i++)
        if (ckls_type_vec_dot_type(matrix(t->m, i)->type) != CKLS_TYPE_F32)
            bytes += 4 * matrix(t->m, i)->ne0 * matrix(t->m, i)->ne1;
    return bytes <= TILES_BF16_MAX_BYTES;
}

int ckls_train_set_exact(ckls_train *t, int32_t exact) {
    if (!t) return ckls_fail(CKLS_EINVAL, "train_set_exact: NULL trainer");
    if (!exact && !t->wt && !t->wf2 && use_bf16_tiles(t)) {
        const int n = t->m->hp.n_layer * N_TARGETS + 1;
        t->wf2 = calloc((size_t)n, sizeof(void *));
        t->wd2 = calloc((size_t)n, sizeof(void *));
        int rc = t->wf2 && t->wd2 ? CKLS_OK : ckls_fail(CKLS_ENOMEM, "train: out of memory");
        int64_t k_max = 0; /* the longest product (the scratch's rows) */
        for (int i = 0; !rc && i < n; i++) {
            const ckls_tensor *w = matrix(t->m, i);
            if (ckls_type_vec_dot_type(w->type) == CKLS_TYPE_F32) continue;
            rc = bf16_matrix(t, i);
            k_max = w->ne0 > k_max ? w->ne0 : k_max;
            k_max = w->ne1 > k_max ? w->ne1 : k_max;
        }
        const int64_t ns = ckls_matmul_dx_bf16_scratch(ckls_pool_threads(t->m->pool), k_max);
        if (!rc && !(t->dyb = ckls_aligned_alloc(sizeof(uint32_t) * (size_t)ns)))
            rc = ckls_fail(CKLS_ENOMEM, "train: out of memory for the bf16 products");
        if (rc) {
            free_transposed(t);
            return rc;
        }
    }
    if (!exact && !t->wt && !t->wf2) {
        const int n = t->m->hp.n_layer * N_TARGETS + 1;
        t->wt = calloc((size_t)n, sizeof(void *));
        t->wt_packed = calloc((size_t)n, sizeof(void *));
        t->wd2 = calloc((size_t)n, sizeof(void *));
        int rc = t->wt && t->wt_packed && t->wd2 ? CKLS_OK : ckls_fail(CKLS_ENOMEM, "train: out of memory");
        for (int i = 0; !rc && i < n - 1; i++) /* not the vocabulary projection: its dY is a softmax gradient */
            if (ckls_type_vec_dot_type(matrix(t->m, i)->type) != CKLS_TYPE_F32) rc = transpose_matrix(t, i);
        /* its dX in bf16 instead, where the CPU multiplies bf16: 8 bits of mantissa per value, not per block of 32,
         * keep the vocabulary's small probabilities */
        const ckls_tensor *wv = matrix(t->m, n - 1);
        if (!rc && ckls_active_kernels()->gemm_tile_bf16 && ckls_type_vec_dot_type(wv->type) != CKLS_TYPE_F32) {
            t->wd2[n - 1] = ckls_bf16_weight_pairs(wv->type, wv->data, wv->ne1, wv->ne0);
            const int64_t ns = ckls_matmul_dx_bf16_scratch(ckls_pool_threads(t->m->pool), wv->ne1);
            t->dyb = ckls_aligned_alloc(sizeof(uint32_t) * (size_t)ns);
            if (!t->wd2[n - 1] || !t->dyb) rc = ckls_fail(CKLS_ENOMEM, "train: out of memory for the bf16 projection");
        } else if (!rc && ckls_active_kernels()->gemm_i16x8 && ckls_type_vec_dot_type(wv->type) != CKLS_TYPE_F32 &&
                   wv->ne0 % 16 == 0) { /* else int16 products: 14 bits a value, a scale per 32 (gemm_i16.c) */
            t->wv16 = ckls_i16_weight_t(wv->type, wv->data, wv->ne1, wv->ne0);
            t->dy16 = ckls_aligned_alloc((size_t)ckls_matmul_dx_i16_scratch(ckls_pool_threads(t->m->pool), wv->ne1));
            if (!t->wv16 || !t->dy16) rc = ckls_fail(CKLS_ENOMEM, "train: out of memory for the int16 projection");
        }
        if (rc) {
            free_transposed(t);
            return rc;
        }
    }
    t->exact = exact != 0;
    t->bf16 = 0; /* a model of f32 matrices trains the same either way */
    for (int i = 0; !t->exact && i <= t->m->hp.n_layer * N_TARGETS; i++)
        t->bf16 |= ckls_type_vec_dot_type(matrix(t->m, i)->type) != CKLS_TYPE_F32;
    return CKLS_OK;
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
    ckls_aligned_free(t->xq);
    ckls_aligned_free(t->a7_off);
    ckls_aligned_free(t->a7_xd);
    ckls_aligned_free(t->dxs);
    free_transposed(t);
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
    t->exact = 1;
    t->cap = T;
    t->r = r;
    /* one arena, carved below; sizes in floats, each rounded to 16 (64 B) */
    const int64_t sizes[] = {
        L * T * d, L * T * d, L * T * d, L * T * d, L * T * d, L * T * kv, L * T * kv, L * T * d, L * T * ff,
        L * T * ff, L * T * ff, L * N_TARGETS * T * r, L * T * hp->n_head, /* xa .. lu lse */
        T * d, T * d, T * V,                                               /* xf hf logits */
        T * d, T * d, T * d, T * kv, T * kv, T * d, T * ff, T * ff, T * r, /* dx dh dq dk dv datt dg dup du */
        big * r, ckls_lora_bwd_scratch(T, r, big, big),                    /* bt lora_ws */
        ckls_attention_backward_scratch((int)nth, T, hp->n_head, hp->n_head_kv, m->head_dim),
        ckls_lora_n_params(a), nth};
    float **dst[] = {&t->xa, &t->xb, &t->h1, &t->h2, &t->q, &t->k, &t->v, &t->att, &t->g, &t->up, &t->act, &t->lu,
                     &t->lse, &t->xf, &t->hf, &t->logits, &t->dx, &t->dh, &t->dq, &t->dk, &t->dv, &t->datt, &t->dg,
                     &t->dup, &t->du, &t->bt, &t->lora_ws, &t->attn_ws, &t->grads, &t->ce_loss};
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
    int64_t xq_row = 0; /* the widest quantized activation row any product of the model reads */
    for (int i = 0; i <= L * N_TARGETS; i++) {
        const ckls_tensor *w = matrix(m, i);
        const int64_t rb = ckls_row_bytes(ckls_type_vec_dot_type(w->type), w->ne0);
        /* dY, for dX through a transposed copy (the layers' matrices only: see transpose_matrix) */
        const int64_t rbt = i == L * N_TARGETS || w->ne1 % 32 ? 0 : ckls_row_bytes(CKLS_TYPE_Q8_0, w->ne1);
        xq_row = rb > xq_row ? rb : xq_row;
        xq_row = rbt > xq_row ? rbt : xq_row;
    }
    t->xq = ckls_aligned_alloc((size_t)(T * xq_row));
    const int64_t n_terms = T * (xq_row / 32 + 1); /* a term a block, and a block is at least 32 bytes */
    t->a7_off = ckls_aligned_alloc(sizeof(int32_t) * (size_t)n_terms);
    t->a7_xd = ckls_aligned_alloc(sizeof(float) * (size_t)n_terms);
    t->dxs = ckls_aligned_alloc(sizeof(float) * (size_t)(T * big));
    if (!t->arena || !t->pos || !t->rows || !t->tgt || !t->ce_cnt || !t->rope_cs || !t->rope_sn || !t->xq ||
        !t->a7_off || !t->a7_xd || !t->dxs) {
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
    /* the angles of ckls_rope and its backward, once per position */
    const float theta_scale = ckls_rope_theta_scale(hp->rope_base, hp->n_rot);
    for (int64_t p = 0; p < T; p++)
        ckls_rope_angles(p, theta_scale, half, t->rope_cs + p * half, t->rope_sn + p * half);
    const char *pe = getenv("CKLS_TRAIN_PROFILE");
    t->prof = pe && *pe && *pe != '0';
    return t;
}

/* CKLS_TRAIN_PROFILE: the time from prof_start to prof_stop is added to category cat */
static double prof_start(const ckls_train *t) { return t->prof ? prof_now() : 0.0; }
static void prof_stop(ckls_train *t, int cat, double p0) {
    if (t->prof) t->prof_s[cat] += prof_now() - p0;
}

/* ---- forward pieces ------------------------------------------------------------------------------------------- */
/* y = x.W^T. Exact: f32 activations over dequantized weight panels, so the gradient is exactly that of the
 * dequantized model (what PyTorch computes on it). Otherwise the serving arithmetic: activations quantized as eval
 * quantizes them, through the interleaved integer kernels (packed: the model's copy of this matrix, or NULL); the
 * backward still runs in f32, so the gradient is that of the dequantized model at the served activations. */
/* matrix i's bf16 copy in w2 (wf2 or wd2), where the step uses one: not exact, made, and the active kernels still
 * multiply bf16 (CKLS_ISA may have changed since the copies were made) */
static const uint32_t *bf16_copy(const ckls_train *t, uint32_t *const *w2, int i) {
    return !t->exact && w2 && w2[i] && ckls_active_kernels()->gemm_tile_bf16 ? w2[i] : NULL;
}

/* a product's result: 0 done, 1 cancelled part-way, < 0 failed (CKLS_ECANCELLED included): any but 0 voids the
 * step */
static void note(ckls_train *t, int rc) {
    t->stopped |= rc != 0;
    if (rc < 0 && !t->failed) t->failed = rc;
}

/* The integer products' activations: where the ISA multiplies Q8_0 faster against 7-bit quants (gemm_x8_a7: AVX2,
 * whose maddubs then needs no sign ops), those, else eval's own. 7 bits double the activations' rounding error;
 * the gradient stays within the tests' bound of the exact step's. */
#define XQ_A7 (-1) /* xq_type of 7-bit Q8_0 activations */
static int a7_acts(int act) { return act == CKLS_TYPE_Q8_0 && ckls_active_kernels()->gemm_x8_a7; }

static void quantize_products(ckls_train *t, int act, const float *x, int64_t n_in, int64_t n) {
    if (a7_acts(act)) ckls_quantize_acts_a7(t->m->pool, x, t->xq, n_in, n, t->a7_off, t->a7_xd);
    else ckls_quantize_acts(t->m->pool, act, x, t->xq, n_in, n);
}

/* y = t->xq . W^T (quantized by quantize_products) through the matrix's integer kernels, plus lr (NULL: none) */
static int integer_product(ckls_train *t, int type, const void *w, const void *packed, int64_t n_out, int64_t n_in,
                           int64_t rb, int64_t n, float *y, const ckls_epilogue *lr) {
    const ckls_a7_terms terms = {t->a7_off, t->a7_xd};
    return ckls_matmul_packed_ep(t->m->pool, type, w, packed, n_out, n_in, t->xq, rb, n, y, n_out, t->cancel,
                                 a7_acts(ckls_type_vec_dot_type(type)) ? &terms : NULL, lr);
}

/* y = x.W^T for matrix i, plus the adapter's scale u.B^T (lr; NULL: none): the integer products add it as they go,
 * the others after (its time then counted as the adapter's) */
static void linear(ckls_train *t, int cat, int i, const ckls_tensor *w, const void *packed, const float *x,
                   int64_t n, float *y, const ckls_epilogue *lr) {
    const double p0 = prof_start(t);
    const int act = ckls_type_vec_dot_type(w->type);
    const uint32_t *wf2 = bf16_copy(t, t->wf2, i);
    if (wf2) { /* on bf16 tiles: y = x.W^T as the dX product through W^T */
        note(t, ckls_matmul_dx_bf16(t->m->pool, wf2, w->ne0, w->ne1, x, n, y, 0, t->dyb, t->cancel));
    } else if (t->exact || act == CKLS_TYPE_F32) {
        note(t, ckls_matmul_f32(t->m->pool, w->type, w->data, w->ne1, w->ne0, x, n, y, t->cancel));
    } else {
        const int64_t rb = ckls_row_bytes(act, w->ne0);
        const int kind = a7_acts(act) ? XQ_A7 : act;
        if (x != t->xq_of || kind != t->xq_type) quantize_products(t, act, x, w->ne0, n);
        t->xq_of = x;
        t->xq_type = kind;
        note(t, integer_product(t, w->type, w->data, packed, w->ne1, w->ne0, rb, n, y, lr));
        lr = NULL;
    }
    prof_stop(t, cat, p0);
    if (!lr) return;
    const double p1 = prof_start(t);
    ckls_gemm(t->m->pool, n, w->ne1, lr->r, lr->scale, lr->u, lr->r, 1, lr->bt, w->ne1, 1, y, w->ne1);
    prof_stop(t, P_LORA_F, p1);
}

static float *lora_u(ckls_train *t, int l, int ti) { return t->lu + ((int64_t)l * N_TARGETS + ti) * t->cap * t->r; }

/* y = W.x (+ adapter) for layer l's matrix ti */
static void linear_l(ckls_train *t, int l, int ti, const ckls_tensor *w, const float *x, int64_t n, float *y) {
    ckls_lora_mat a;
    ckls_epilogue lr = {.u = lora_u(t, l, ti), .bt = t->bt, .r = t->r, .scale = ckls_lora_scale(t->a)};
    const int adapted = ckls_lora_get(t->a, l, ti, &a);
    if (adapted) {
        const double p0 = prof_start(t);
        ckls_lora_fwd_u(t->m->pool, a.A, a.B, t->r, a.n_in, a.n_out, x, n, lora_u(t, l, ti), t->bt);
        prof_stop(t, P_LORA_F, p0);
    }
    linear(t, P_MM, l * N_TARGETS + ti, w, t->m->packed[l * N_TARGETS + ti], x, n, y, adapted ? &lr : NULL);
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

/* runs j over the step's n rows on the pool, its time counted in category cat */
static void ew_run(ckls_train *t, int cat, int64_t n, ew_job j) {
    const double p0 = prof_start(t);
    j.n = n;
    j.hp = &t->m->hp;
    j.m = t->m;
    j.pos = t->pos;
    ckls_pool_run(j.n > 1 ? t->m->pool : NULL, ew_task, &j);
    prof_stop(t, cat, p0);
}

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
    for (int64_t t = lo; t < hi; t++) {
        const float *restrict cs = j->a + t * half, *restrict sn = j->w + t * half;
        for (int64_t h = 0; h < n_head; h++) {
            float *restrict v = x + (t * n_head + h) * hd;
            if (norm) /* pairs side by side; one loop a layout, so the compiler vectorizes each */
                for (int64_t i = 0; i < half; i++) {
                    const float a = v[2 * i], b = v[2 * i + 1], si = sign * sn[i];
                    v[2 * i] = a * cs[i] - b * si;
                    v[2 * i + 1] = a * si + b * cs[i];
                }
            else /* NEOX: the halves' pairs */
                for (int64_t i = 0; i < half; i++) {
                    const float a = v[i], b = v[i + half], si = sign * sn[i];
                    v[i] = a * cs[i] - b * si;
                    v[i + half] = a * si + b * cs[i];
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

/* ---- one layer, forward and backward ---------------------------------------------------------------------------- */
/* Layer l's saved activations ([n_layer][cap x dim] each) */
typedef struct {
    float *xa, *xb, *h1, *h2, *q, *k, *v, *att, *g, *up, *act, *lse;
} layer_acts;

static layer_acts acts_of(const ckls_train *t, int l) {
    const int64_t T = t->cap, d = t->m->hp.n_embd, kv = t->m->kv_dim, ff = t->m->hp.n_ff, at = (int64_t)l * T;
    return (layer_acts){.xa = t->xa + at * d, .xb = t->xb + at * d, .h1 = t->h1 + at * d, .h2 = t->h2 + at * d,
                        .q = t->q + at * d, .k = t->k + at * kv, .v = t->v + at * kv, .att = t->att + at * d,
                        .g = t->g + at * ff, .up = t->up + at * ff, .act = t->act + at * ff,
                        .lse = t->lse + at * t->m->hp.n_head};
}

/* Whether the step is void: a product skipped work, or the flag is up now. Latched: once seen, the flag stays seen
 * for the rest of the step (a check that skipped work on it and a later one that found it lowered again would let a
 * step with a stale gradient return OK). */
static int cancelled(ckls_train *t) {
    if (!t->stopped && t->cancel && *t->cancel) t->stopped = 1;
    return t->stopped;
}
/* the step's return once cancelled(): a product's error (out of memory) as it was, else CKLS_ECANCELLED */
static int stop_code(const ckls_train *t) { return t->failed ? t->failed : ckls_fail(CKLS_ECANCELLED, "cancelled"); }

/* Token embeddings into layer 0's input and its attention norm. */
static void embed_forward(ckls_train *t, const int32_t *tokens, int64_t n) {
    const ckls_model *m = t->m;
    const int64_t d = m->hp.n_embd, emb_rb = ckls_row_bytes(m->tok_embd.type, d);
    const ckls_type_info *emb = ckls_type_get(m->tok_embd.type);
    const layer_acts a = acts_of(t, 0);
    for (int64_t i = 0; i < n; i++)
        emb->to_float((const char *)m->tok_embd.data + (int64_t)tokens[i] * emb_rb, a.xa + i * d, d);
    ew_run(t, P_ELEM_F, n, (ew_job){.fn = ew_add_norm, .dim = d, .b = a.xa, .w = m->layers[0].attn_norm.data, .c = a.h1});
}

/* xb = xa + W_o.attention(RoPE(W_q.h1), RoPE(W_k.h1), W_v.h1), then h2 = ffn_norm(xb) */
static void attention_forward(ckls_train *t, int l, int64_t n) {
    const ckls_model *m = t->m;
    const ckls_hparams *hp = &m->hp;
    const ckls_layer *Ly = &m->layers[l];
    const int64_t d = hp->n_embd, kv = m->kv_dim;
    const layer_acts a = acts_of(t, l);
    linear_l(t, l, TQ, &Ly->wq, a.h1, n, a.q);
    linear_l(t, l, TK, &Ly->wk, a.h1, n, a.k);
    linear_l(t, l, TV, &Ly->wv, a.h1, n, a.v);
    add_bias(a.q, &Ly->bq, n, d);
    add_bias(a.k, &Ly->bk, n, kv);
    add_bias(a.v, &Ly->bv, n, kv);
    ew_run(t, P_ELEM_F, n, (ew_job){.fn = ew_rope, .dim = d, .b = a.q, .c = a.k, .a = t->rope_cs, .w = t->rope_sn});
    const double p0 = prof_start(t);
    ckls_attention_fwd(m->pool, a.q, a.k, a.v, a.att, a.lse, n, hp->n_head, hp->n_head_kv, m->head_dim, t->bf16,
                       t->attn_ws);
    prof_stop(t, P_ATTN_F, p0);
    linear_l(t, l, TO, &Ly->wo, a.att, n, a.xb);
    ew_run(t, P_ELEM_F, n, (ew_job){.fn = ew_add_norm, .dim = d, .a = a.xa, .b = a.xb, .w = Ly->ffn_norm.data, .c = a.h2});
}

/* next layer's input (or the final one) x = xb + W_down.(silu(W_gate.h2) * W_up.h2), fused with the next norm: the
 * next layer's attention norm into its h1, or the output norm into hf */
static void ffn_forward(ckls_train *t, int l, int64_t n) {
    const ckls_model *m = t->m;
    const ckls_layer *Ly = &m->layers[l];
    const int64_t d = m->hp.n_embd, ff = m->hp.n_ff;
    const int last = l + 1 == m->hp.n_layer;
    const layer_acts a = acts_of(t, l);
    float *x_next = last ? t->xf : acts_of(t, l + 1).xa;
    linear_l(t, l, TGATE, &Ly->w_gate, a.h2, n, a.g);
    linear_l(t, l, TUP, &Ly->w_up, a.h2, n, a.up);
    ew_run(t, P_ELEM_F, n, (ew_job){.fn = ew_swiglu, .dim = ff, .b = a.g, .c = a.up, .e = a.act});
    linear_l(t, l, TDOWN, &Ly->w_down, a.act, n, x_next);
    ew_run(t, P_ELEM_F, n, (ew_job){.fn = ew_add_norm, .dim = d, .a = a.xb, .b = x_next,
                                    .w = last ? m->output_norm.data : m->layers[l + 1].attn_norm.data,
                                    .c = last ? t->hf : acts_of(t, l + 1).h1});
}

/* dx (+)= dy.W for the model's matrix i (matrix()): exact, in f32 over the dequantized weights; otherwise in bf16
 * where the matrix has a bf16 copy (every one on bf16 tiles, else the vocabulary projection's where the CPU has
 * bf16 products), else the vocabulary projection's in int16 products where the CPU has those (gemm_i16.c), else dy
 * quantized to Q8_0 through W^T's integer kernels (transpose_matrix) where the matrix has one, else f32 */
static int integer_dx(const ckls_train *t, int i) {
    return !bf16_copy(t, t->wd2, i) && !t->exact && t->wt && t->wt[i];
}

/* ...plus the low-rank term lr where that is the integer product (the caller asks integer_dx) */
static void linear_dx(ckls_train *t, int cat, int i, const float *dy, int64_t n, float *dx, int accumulate,
                      const ckls_epilogue *lr) {
    const double p0 = prof_start(t);
    const ckls_tensor *w = matrix(t->m, i);
    const uint32_t *wd2 = bf16_copy(t, t->wd2, i);
    if (wd2) {
        note(t, ckls_matmul_dx_bf16(t->m->pool, wd2, w->ne1, w->ne0, dy, n, dx, accumulate, t->dyb, t->cancel));
    } else if (t->wv16 && !t->exact && i == t->m->hp.n_layer * N_TARGETS) {
        note(t, ckls_matmul_dx_i16(t->m->pool, t->wv16, w->ne1, w->ne0, dy, n, dx, accumulate, t->dy16, t->cancel));
    } else if (!integer_dx(t, i)) {
        note(t, ckls_matmul_dx(t->m->pool, w->type, w->data, w->ne1, w->ne0, dy, n, dx, accumulate, t->cancel));
    } else {
        const int64_t n_out = w->ne1, n_in = w->ne0, rb = ckls_row_bytes(CKLS_TYPE_Q8_0, n_out);
        /* accumulating: into scratch, each block added to dx by the product as it finishes */
        ckls_epilogue ep = lr ? *lr : (ckls_epilogue){0};
        ep.acc = accumulate ? dx : NULL;
        quantize_products(t, CKLS_TYPE_Q8_0, dy, n_out, n);
        t->xq_of = NULL;
        note(t, integer_product(t, CKLS_TYPE_Q8_0, t->wt[i], t->wt_packed[i], n_in, n_out, rb, n,
                                accumulate ? t->dxs : dx, ep.u || ep.acc ? &ep : NULL));
    }
    prof_stop(t, cat, p0);
}

/* the adapter of layer l's matrix ti, if any: its gradients from the forward's input x and dy; dx += its input
 * gradient (NULL: not wanted) */
static void lora_backward(ckls_train *t, int l, int ti, const float *x, const float *dy, int64_t n, float *dx) {
    ckls_lora_mat a;
    if (!ckls_lora_get(t->a, l, ti, &a)) return;
    const double p0 = prof_start(t);
    ckls_lora_bwd(t->m->pool, a.A, a.B, ckls_lora_grads_at(t->a, t->grads, l, ti, 0),
                  ckls_lora_grads_at(t->a, t->grads, l, ti, 1), t->r, a.n_in, a.n_out, ckls_lora_scale(t->a), x,
                  lora_u(t, l, ti), dy, n, t->du, dx, t->lora_ws);
    prof_stop(t, P_LORA_B, p0);
}

/* dx (+)= dy.W plus the adapter's input gradient du.A for layer l's matrix ti, and the adapter's gradients. Where dX
 * is an integer product, it adds du.A as it goes (du first: lora_backward without dx). */
static void backward_l(ckls_train *t, int l, int ti, const float *x, const float *dy, int64_t n, float *dx,
                       int accumulate) {
    const int i = l * N_TARGETS + ti;
    ckls_lora_mat a;
    if (integer_dx(t, i) && ckls_lora_get(t->a, l, ti, &a)) {
        lora_backward(t, l, ti, x, dy, n, NULL);
        const ckls_epilogue lr = {.u = t->du, .bt = a.A, .r = t->r, .scale = 1.0f};
        linear_dx(t, P_DX, i, dy, n, dx, accumulate, &lr);
        return;
    }
    linear_dx(t, P_DX, i, dy, n, dx, accumulate, NULL);
    lora_backward(t, l, ti, x, dy, n, dx);
}

/* From dx, the gradient of layer l's output (x_next = xb + W_down.act): dx becomes the gradient of xb. */
static void ffn_backward(ckls_train *t, int l, int64_t n) {
    const ckls_layer *Ly = &t->m->layers[l];
    const int64_t d = t->m->hp.n_embd, ff = t->m->hp.n_ff;
    const layer_acts a = acts_of(t, l);
    backward_l(t, l, TDOWN, a.act, t->dx, n, t->dg, 0);
    ew_run(t, P_ELEM_B, n, (ew_job){.fn = ew_swiglu_bwd, .dim = ff, .b = a.g, .c = a.up, .e = t->dg, .w = t->dup});
    backward_l(t, l, TGATE, a.h2, t->dg, n, t->dh, 0);
    backward_l(t, l, TUP, a.h2, t->dup, n, t->dh, 1);
    ew_run(t, P_ELEM_B, n, (ew_job){.fn = ew_norm_bwd_add, .dim = d, .a = a.xb, .w = Ly->ffn_norm.data, .c = t->dh,
                                    .b = t->dx});
}

/* From dx, the gradient of xb = xa + W_o.att: dx becomes the gradient of layer l's input xa. Layer 0 stops at the
 * adapter's gradients: the embeddings below are frozen. */
static void attention_backward(ckls_train *t, int l, int64_t n) {
    const ckls_model *m = t->m;
    const ckls_hparams *hp = &m->hp;
    const ckls_layer *Ly = &m->layers[l];
    const int64_t d = hp->n_embd;
    const layer_acts a = acts_of(t, l);
    backward_l(t, l, TO, a.att, t->dx, n, t->datt, 0);
    const double p0 = prof_start(t);
    ckls_attention_bwd(m->pool, a.q, a.k, a.v, a.att, a.lse, t->datt, t->dq, t->dk, t->dv, n, hp->n_head,
                       hp->n_head_kv, m->head_dim, t->bf16, t->attn_ws);
    prof_stop(t, P_ATTN_B, p0);
    ew_run(t, P_ELEM_B, n, (ew_job){.fn = ew_rope_bwd, .dim = d, .b = t->dq, .c = t->dk, .a = t->rope_cs, .w = t->rope_sn});
    if (l == 0) {
        lora_backward(t, l, TQ, a.h1, t->dq, n, NULL);
        lora_backward(t, l, TK, a.h1, t->dk, n, NULL);
        lora_backward(t, l, TV, a.h1, t->dv, n, NULL);
        return;
    }
    backward_l(t, l, TQ, a.h1, t->dq, n, t->dh, 0);
    backward_l(t, l, TK, a.h1, t->dk, n, t->dh, 1);
    backward_l(t, l, TV, a.h1, t->dv, n, t->dh, 1);
    ew_run(t, P_ELEM_B, n, (ew_job){.fn = ew_norm_bwd_add, .dim = d, .a = a.xa, .w = Ly->attn_norm.data, .c = t->dh,
                                    .b = t->dx});
}

/* ---- the loss ------------------------------------------------------------------------------------------------------ */
/* Logits, loss and their gradient only for the rows that have a target (FIM samples count only the middle): the
 * vocabulary projection is the largest matrix, forward and backward. Gathers those rows of hf (into datt, free until
 * the backward) and their targets; returns how many. */
static int64_t gather_targets(ckls_train *t, const int32_t *targets, int64_t n) {
    const int64_t d = t->m->hp.n_embd;
    int64_t nc = 0;
    for (int64_t i = 0; i < n; i++)
        if (targets[i] >= 0) {
            memcpy(t->datt + nc * d, t->hf + i * d, sizeof(float) * (size_t)d);
            t->rows[nc] = (int32_t)i;
            t->tgt[nc++] = targets[i];
        }
    return nc;
}

/* The logits of the nc gathered rows. */
static void logits_forward(ckls_train *t, int64_t nc) {
    linear(t, P_LOGITS, t->m->hp.n_layer * N_TARGETS, &t->m->output, t->m->packed[t->m->hp.n_layer * N_TARGETS],
           t->datt, nc, t->logits, NULL);
}

/* Mean cross-entropy of the gathered rows into *loss; their logits become the loss's gradient. */
static void loss_forward(ckls_train *t, int64_t nc, float *loss) {
    const int nth = ckls_pool_threads(t->m->pool);
    for (int i = 0; i < nth; i++) t->ce_loss[i] = 0.0f, t->ce_cnt[i] = 0;
    ce_job cj = {.logits = t->logits, .targets = t->tgt, .n = nc, .V = t->m->hp.n_vocab, .total = nc,
                 .loss = t->ce_loss, .cnt = t->ce_cnt, .dlogits = t->logits};
    const double p0 = prof_start(t);
    ckls_pool_run(t->m->pool, ce_task, &cj);
    prof_stop(t, P_CE, p0);
    double lsum = 0.0;
    for (int i = 0; i < nth; i++) lsum += (double)t->ce_loss[i] * (double)t->ce_cnt[i];
    *loss = (float)(lsum / (double)nc);
}

/* Through the vocabulary projection (rows scattered back to their positions, zero elsewhere) and the output norm:
 * dx = the gradient of the last layer's output. */
static void logits_backward(ckls_train *t, int64_t n, int64_t nc) {
    const ckls_model *m = t->m;
    const int64_t d = m->hp.n_embd;
    linear_dx(t, P_LOGITS_DX, m->hp.n_layer * N_TARGETS, t->logits, nc, t->dq, 0, NULL);
    if (cancelled(t)) return;
    memset(t->dh, 0, sizeof(float) * (size_t)(n * d));
    for (int64_t i = 0; i < nc; i++) memcpy(t->dh + (int64_t)t->rows[i] * d, t->dq + i * d, sizeof(float) * (size_t)d);
    ckls_rmsnorm_backward(t->xf, m->output_norm.data, t->dh, t->dx, NULL, n, d, m->hp.rms_eps);
}

static void prof_report(ckls_train *t, int32_t n_tok) {
    double sum = 0.0;
    for (int i = 0; i < P_N; i++) sum += t->prof_s[i];
    fprintf(stderr, "train_step %d tokens, %.1f ms in ops:", n_tok, sum * 1e3);
    for (int i = 0; i < P_N; i++) fprintf(stderr, " %s %.1f", P_NAMES[i], t->prof_s[i] * 1e3);
    fprintf(stderr, "\n");
    memset(t->prof_s, 0, sizeof t->prof_s);
}

/* ---- the step -------------------------------------------------------------------------------------------------- */
int ckls_train_step(ckls_train *t, const int32_t *tokens, const int32_t *targets, int32_t n_tok, float grad_scale,
                    const volatile int32_t *cancel, float *loss) {
    if (!t || !tokens || !targets || !loss) return ckls_fail(CKLS_EINVAL, "train_step: NULL argument");
    if (n_tok <= 0 || n_tok > t->cap)
        return ckls_fail(CKLS_ERANGE, "train_step: %d tokens, the state holds 1..%lld", n_tok, (long long)t->cap);
    const ckls_hparams *hp = &t->m->hp;
    for (int32_t i = 0; i < n_tok; i++)
        if (tokens[i] < 0 || tokens[i] >= hp->n_vocab || targets[i] >= hp->n_vocab)
            return ckls_fail(CKLS_EINVAL, "train_step: token %d / target %d at %d outside the vocabulary of %d",
                             tokens[i], targets[i], i, hp->n_vocab);
    if (ckls_lora_check(t->a, hp)) return CKLS_EINVAL;
    const int64_t n = n_tok;
    t->cancel = cancel;
    t->stopped = t->failed = 0;
    t->xq_of = NULL; /* the activations change with every step */

    embed_forward(t, tokens, n);
    for (int l = 0; l < hp->n_layer; l++) {
        if (cancelled(t)) return stop_code(t);
        attention_forward(t, l, n);
        ffn_forward(t, l, n);
    }
    if (cancelled(t)) return stop_code(t);
    const int64_t nc = gather_targets(t, targets, n);
    if (nc == 0) { /* nothing to learn from: no loss, no gradient */
        *loss = 0.0f;
        return CKLS_OK;
    }
    logits_forward(t, nc);
    if (cancelled(t)) return stop_code(t);
    loss_forward(t, nc, loss);

    memset(t->grads, 0, sizeof(float) * (size_t)ckls_lora_n_params(t->a));
    logits_backward(t, n, nc);
    for (int l = hp->n_layer - 1; l >= 0; l--) {
        if (cancelled(t)) return stop_code(t);
        ffn_backward(t, l, n);
        if (cancelled(t)) return stop_code(t);
        attention_backward(t, l, n);
    }
    if (cancelled(t)) return stop_code(t);
    float *ga = ckls_lora_buffer(t->a, CKLS_LORA_GRADS);
    const int64_t np = ckls_lora_n_params(t->a);
    for (int64_t i = 0; i < np; i++) ga[i] += grad_scale * t->grads[i];
    if (t->prof) prof_report(t, n_tok);
    return CKLS_OK;
}
