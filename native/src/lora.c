/* lora.c — LoRA adapters: the parameter store (A, B, their gradients and AdamW moments in four flat buffers,
 * every tensor at the same offset in each, so the optimizer is one loop and Python sees numpy views), and the
 * forward/backward of one adapted matrix as f32 GEMMs.
 *
 * Layout per matrix is llama.cpp's LoRA GGUF one: A [rank x n_in] (lora_a, ggml ne {n_in, rank}), B [n_out x
 * rank] (lora_b, ne {rank, n_out}); y = W.x + (alpha / rank) * B.(A.x). */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "backward.h"
#include "lora.h"

struct ckls_lora {
    ckls_hparams hp;
    int32_t rank, targets;
    float alpha, scale;
    int64_t n_params, step;
    float *buf[4];
    int64_t *offs; /* [n_layer][N_TARGETS][2]: offset of A, B or -1 */
};

/* n_in, n_out of target index ti (q, k, v, o, gate, up, down) */
static void target_shape(const ckls_hparams *hp, int ti, int64_t *n_in, int64_t *n_out) {
    const int64_t d = hp->n_embd, kv = (int64_t)hp->n_head_kv * (hp->n_embd / hp->n_head), ff = hp->n_ff;
    const int64_t ins[N_TARGETS] = {d, d, d, d, d, d, ff}, outs[N_TARGETS] = {d, kv, kv, d, ff, ff, d};
    *n_in = ins[ti];
    *n_out = outs[ti];
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void ckls_lora_free(ckls_lora *a) {
    if (!a) return;
    for (int i = 0; i < 4; i++) ckls_aligned_free(a->buf[i]);
    free(a->offs);
    free(a);
}

ckls_lora *ckls_lora_create(const ckls_hparams *hp, int32_t rank, float alpha, int32_t targets, uint64_t seed) {
    if (!hp || hp->n_layer <= 0 || hp->n_layer > 1024 || hp->n_embd <= 0 || hp->n_head <= 0 || hp->n_head_kv <= 0 ||
        hp->n_embd % hp->n_head || hp->n_head % hp->n_head_kv || hp->n_ff <= 0) {
        ckls_fail(CKLS_EINVAL, "lora: bad model hyper-parameters");
        return NULL;
    }
    if (rank <= 0 || rank > 4096 || !(alpha > 0.0f && isfinite(alpha)) || targets <= 0 || targets > CKLS_LORA_ALL) {
        ckls_fail(CKLS_EINVAL, "lora: rank %d, alpha %g or targets %#x out of range", rank, alpha, targets);
        return NULL;
    }
    ckls_lora *a = calloc(1, sizeof *a);
    if (!a) { ckls_fail(CKLS_ENOMEM, "out of memory"); return NULL; }
    a->hp = *hp;
    a->rank = rank;
    a->targets = targets;
    a->alpha = alpha;
    a->scale = alpha / (float)rank;
    a->offs = malloc(sizeof(int64_t) * (size_t)hp->n_layer * N_TARGETS * 2);
    if (!a->offs) { ckls_lora_free(a); ckls_fail(CKLS_ENOMEM, "out of memory"); return NULL; }
    int64_t off = 0;
    for (int l = 0; l < hp->n_layer; l++)
        for (int ti = 0; ti < N_TARGETS; ti++) {
            int64_t *o = a->offs + ((int64_t)l * N_TARGETS + ti) * 2;
            if (!(targets & (1 << ti))) { o[0] = o[1] = -1; continue; }
            int64_t n_in, n_out;
            target_shape(hp, ti, &n_in, &n_out);
            o[0] = off;
            off += rank * n_in;
            o[1] = off;
            off += n_out * rank;
        }
    a->n_params = off;
    for (int i = 0; i < 4; i++)
        if (!(a->buf[i] = ckls_aligned_alloc(sizeof(float) * (size_t)off))) {
            ckls_lora_free(a);
            ckls_fail(CKLS_ENOMEM, "lora: out of memory for %lld parameters", (long long)off);
            return NULL;
        }
    /* PEFT: kaiming_uniform_(A, a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)); B = 0 */
    uint64_t s = seed;
    for (int l = 0; l < hp->n_layer; l++)
        for (int ti = 0; ti < N_TARGETS; ti++) {
            const int64_t *o = a->offs + ((int64_t)l * N_TARGETS + ti) * 2;
            if (o[0] < 0) continue;
            int64_t n_in, n_out;
            target_shape(hp, ti, &n_in, &n_out);
            const float bound = 1.0f / sqrtf((float)n_in);
            for (int64_t i = 0; i < rank * n_in; i++)
                a->buf[0][o[0] + i] = bound * (2.0f * (float)((splitmix(&s) >> 40) * (1.0 / 16777216.0)) - 1.0f);
        }
    return a;
}

const char *ckls_lora_target_name(int32_t i) {
    static const char *const names[N_TARGETS] = {[TQ] = "attn_q", [TK] = "attn_k", [TV] = "attn_v",
                                                 [TO] = "attn_output", [TGATE] = "ffn_gate", [TUP] = "ffn_up",
                                                 [TDOWN] = "ffn_down"};
    return i >= 0 && i < N_TARGETS ? names[i] : NULL;
}

int64_t ckls_lora_n_params(const ckls_lora *a) { return a ? a->n_params : 0; }
float *ckls_lora_buffer(ckls_lora *a, int32_t which) { return a && which >= 0 && which < 4 ? a->buf[which] : NULL; }
int32_t ckls_lora_rank(const ckls_lora *a) { return a ? a->rank : 0; }
int32_t ckls_lora_targets(const ckls_lora *a) { return a ? a->targets : 0; }
float ckls_lora_scale(const ckls_lora *a) { return a ? a->scale : 0.0f; }
int64_t ckls_lora_adam_step(const ckls_lora *a) { return a ? a->step : 0; }

int ckls_lora_set_alpha(ckls_lora *a, float alpha) {
    if (!a || !(alpha > 0.0f && isfinite(alpha))) return ckls_fail(CKLS_EINVAL, "lora: bad alpha");
    a->alpha = alpha;
    a->scale = alpha / (float)a->rank;
    return CKLS_OK;
}

int ckls_lora_set_adam_step(ckls_lora *a, int64_t step) {
    if (!a || step < 0) return ckls_fail(CKLS_EINVAL, "lora: bad step");
    a->step = step;
    return CKLS_OK;
}

static int target_index(int32_t target) {
    for (int ti = 0; ti < N_TARGETS; ti++)
        if (target == 1 << ti) return ti;
    return -1;
}

int64_t ckls_lora_offset(const ckls_lora *a, int32_t layer, int32_t target, int32_t is_b) {
    const int ti = target_index(target);
    if (!a || layer < 0 || layer >= a->hp.n_layer || ti < 0) return -1;
    return a->offs[((int64_t)layer * N_TARGETS + ti) * 2 + (is_b ? 1 : 0)];
}

int ckls_lora_get(const ckls_lora *a, int layer, int ti, ckls_lora_mat *out) {
    const int64_t *o = a->offs + ((int64_t)layer * N_TARGETS + ti) * 2;
    if (o[0] < 0) return 0;
    target_shape(&a->hp, ti, &out->n_in, &out->n_out);
    out->A = a->buf[CKLS_LORA_PARAMS] + o[0];
    out->B = a->buf[CKLS_LORA_PARAMS] + o[1];
    out->dA = a->buf[CKLS_LORA_GRADS] + o[0];
    out->dB = a->buf[CKLS_LORA_GRADS] + o[1];
    return 1;
}

float *ckls_lora_grads_at(ckls_lora *a, float *grads, int layer, int ti, int is_b) {
    const int64_t o = a->offs[((int64_t)layer * N_TARGETS + ti) * 2 + (is_b ? 1 : 0)];
    return o < 0 ? NULL : grads + o;
}

int ckls_lora_check(const ckls_lora *a, const ckls_hparams *hp) {
    const ckls_hparams *h = &a->hp;
    if (h->n_layer != hp->n_layer || h->n_embd != hp->n_embd || h->n_ff != hp->n_ff || h->n_head != hp->n_head ||
        h->n_head_kv != hp->n_head_kv)
        return ckls_fail(CKLS_EINVAL, "adapter shapes (%d layers, d %d, ff %d, heads %d/%d) do not fit the model "
                         "(%d layers, d %d, ff %d, heads %d/%d)", h->n_layer, h->n_embd, h->n_ff, h->n_head,
                         h->n_head_kv, hp->n_layer, hp->n_embd, hp->n_ff, hp->n_head, hp->n_head_kv);
    return CKLS_OK;
}

int ckls_lora_zero_grad(ckls_lora *a) {
    if (!a) return ckls_fail(CKLS_EINVAL, "lora: NULL adapter");
    memset(a->buf[CKLS_LORA_GRADS], 0, sizeof(float) * (size_t)a->n_params);
    return CKLS_OK;
}

/* ---- one adapted matrix ---------------------------------------------------------------------------------------- */
/* B^T (r rows of n_out): the tile's operand for y += u.B^T, and the rows W of the row dots du = dy.B */
static void transpose_b(const float *B, int64_t r, int64_t n_out, float *bt) {
    for (int64_t o = 0; o < n_out; o++)
        for (int64_t j = 0; j < r; j++) bt[j * n_out + o] = B[o * r + j];
}

void ckls_lora_fwd_u(ckls_pool *pool, const float *A, const float *B, int64_t r, int64_t n_in, int64_t n_out,
                     const float *x, int64_t n_tok, float *u, float *bt) {
    transpose_b(B, r, n_out, bt);
    ckls_gemm_nt(pool, n_tok, r, n_in, 1.0f, x, n_in, A, n_in, 0, u, r); /* u = x.A^T: r dots a token */
}


/* The backward by chunks of LORA_CHUNK tokens (work items), each by blocks of LORA_ROWS: du of the block, then its
 * share of dB and dA into the chunk's partial sums and its rows of dx, while the block's dy, x and dx rows are still
 * in cache (as four whole-sequence GEMMs, dy was read twice and each product streamed megabytes). The partials are
 * added in chunk order, so the sums do not depend on which thread took which chunk, nor on how many ran. */
#define LORA_ROWS 32
#define LORA_CHUNK 128

typedef struct {
    ckls_gemm_tile_fn tile;
    ckls_gemm_nt_fn nt;
    const float *A, *bt, *x, *u, *dy;
    float *dA, *dB, *du, *dx, *part;
    int64_t r, n_in, n_out, n_tok;
    float scale;
    atomic_llong next;
} lora_bwd_job;

static void lora_bwd_task(void *p, int ith, int nth) {
    lora_bwd_job *j = p;
    const int64_t r = j->r, n_in = j->n_in, n_out = j->n_out, n_chunks = (j->n_tok + LORA_CHUNK - 1) / LORA_CHUNK;
    for (int64_t c; (c = atomic_fetch_add(&j->next, 1)) < n_chunks;) {
        float *pa = j->part + c * r * (n_in + n_out), *pb = pa + r * n_in;
        const int64_t t1 = (c + 1) * LORA_CHUNK < j->n_tok ? (c + 1) * LORA_CHUNK : j->n_tok;
        for (int64_t t = c * LORA_CHUNK; t < t1; t += LORA_ROWS) {
            const int64_t m = t1 - t < LORA_ROWS ? t1 - t : LORA_ROWS, first = t == c * LORA_CHUNK;
            const float *dy = j->dy + t * n_out, *x = j->x + t * n_in;
            float *du = j->du + t * r;
            j->nt(m, r, n_out, j->scale, dy, n_out, j->bt, n_out, 0, du, r);             /* du = s dy B */
            j->tile(r, n_out, m, j->scale, j->u + t * r, 1, r, dy, n_out, !first, pb, n_out); /* dB^T += s u^T dy */
            j->tile(r, n_in, m, 1.0f, du, 1, r, x, n_in, !first, pa, n_in);              /* dA += du^T x */
            if (j->dx) j->tile(m, n_in, r, 1.0f, du, r, 1, j->A, n_in, 1, j->dx + t * n_in, n_in); /* dx += du A */
        }
    }
}

static void lora_sum_task(void *p, int ith, int nth) {
    const lora_bwd_job *j = p;
    const int64_t na = j->r * j->n_in, n = j->r * (j->n_in + j->n_out), e0 = n * ith / nth, e1 = n * (ith + 1) / nth;
    const int64_t n_chunks = (j->n_tok + LORA_CHUNK - 1) / LORA_CHUNK;
    for (int64_t e = e0; e < e1; e++) {
        float s = 0.0f;
        for (int64_t c = 0; c < n_chunks; c++) s += j->part[c * n + e];
        if (e < na) j->dA[e] += s;
        else j->dB[(e - na) % j->n_out * j->r + (e - na) / j->n_out] += s; /* the partials hold dB^T */
    }
}

int64_t ckls_lora_bwd_scratch(int64_t max_tok, int64_t r, int64_t n_in_max, int64_t n_out_max) {
    return ((max_tok + LORA_CHUNK - 1) / LORA_CHUNK + 1) * r * (n_in_max + n_out_max); /* the partials, then B^T */
}

void ckls_lora_bwd(ckls_pool *pool, const float *A, const float *B, float *dA, float *dB, int64_t r, int64_t n_in,
                   int64_t n_out, float scale, const float *x, const float *u, const float *dy, int64_t n_tok,
                   float *du, float *dx, float *part) {
    float *bt = part + (n_tok + LORA_CHUNK - 1) / LORA_CHUNK * r * (n_in + n_out);
    transpose_b(B, r, n_out, bt);
    lora_bwd_job j = {.tile = ckls_active_kernels()->gemm_tile, .nt = ckls_active_kernels()->gemm_nt, .A = A,
                      .bt = bt, .x = x, .u = u, .dy = dy, .dA = dA, .dB = dB, .du = du, .dx = dx, .part = part, .r = r,
                      .n_in = n_in, .n_out = n_out, .n_tok = n_tok, .scale = scale};
    atomic_init(&j.next, 0);
    ckls_pool_run(n_tok > LORA_CHUNK ? pool : NULL, lora_bwd_task, &j);
    ckls_pool_run(pool, lora_sum_task, &j);
}
