/* matmul.c — GEMV (decode, one token) and blocked GEMM (prompt, many tokens) over the per-ISA dot kernels.
 *
 * Work is split by output rows in chunks handed out through an atomic counter (threads that finish early take
 * more). Within a chunk, each block of weight rows is dotted against a block of tokens so the weight bytes are
 * reused from L1/L2 across tokens instead of streamed from memory once per token. Matrices repacked at load into
 * interleaved 8-row groups (Q4_0, Q4_K, Q8_0, and Q6_K where the ISA has its kernel: repack.c) take ckls_matmul_packed
 * instead: the same hand-out over groups, one kernel call per group and 1 to 4 tokens, or, where the ISA has a
 * 16-row kernel (AVX-512 VNNI) and at least X16_MIN_TOKENS tokens are left in the block, per two adjacent groups
 * and 4 to 8 tokens; where it has a tile kernel (AMX), a chunk's whole pairs of groups x every whole 16-token tile
 * go to it in one call, and the rest (the last tokens, an odd group, the tail rows) as without. */
#include <stdlib.h>

#include "matmul.h"
#include "quant.h"

#define ROW_BLOCK 4   /* weight rows kept hot together */
#define TOK_BLOCK 16  /* tokens swept per weight-row block */
#define TOK_RANGE 256 /* tokens per hand-out of a packed product (a multiple of the tile kernels' 16) */
/* Fewest tokens for which the 16-row kernels (two groups in 512-bit registers) beat two 8-row calls. Below, with
 * the weights streamed from memory (decode, short batches), they lose. native/tools/bench_gemm.c on a Zen 4
 * (family 25 model 17), one core, 37 MB of Q4_K (G=2048, N=4096), MAC/ns 8-row / 16-row: 1 token 53 / 25,
 * 2 tokens 70 / 51, 4 tokens 59 / 64, 8 tokens 49 / 87 (Q4_0 and Q8_0 alike). Why two interleaved groups stream
 * so much worse at one token is not understood (software prefetch of both did not help). */
#define X16_MIN_TOKENS 4

typedef struct {
    const ckls_isa_kernels *kern;
    int type;
    ckls_vec_dot_fn dot;
    const char *w;
    int64_t w_row_bytes, n_out, n_in;
    const char *xq;
    int64_t xq_row_bytes, n_tok;
    float *y;
    int64_t y_stride;
    int64_t chunk;
    ckls_queue q; /* hands out chunks of rows */
} matmul_job;

static void matmul_task(void *p, int ith, int nth) {
    matmul_job *j = p;
    for (int64_t r0; (r0 = ckls_queue_take(&j->q, j->n_out, j->chunk)) >= 0;) {
        const int64_t r1 = r0 + j->chunk < j->n_out ? r0 + j->chunk : j->n_out;
        for (int64_t t0 = 0; t0 < j->n_tok; t0 += TOK_BLOCK) {
            const int64_t t1 = t0 + TOK_BLOCK < j->n_tok ? t0 + TOK_BLOCK : j->n_tok;
            for (int64_t rb = r0; rb < r1; rb += ROW_BLOCK) {
                const int64_t re = rb + ROW_BLOCK < r1 ? rb + ROW_BLOCK : r1;
                int64_t t = t0;
                /* weights unpacked once per 4 tokens; full row blocks only, so every output is computed by the
                 * same arithmetic as on the one-token path (tail rows use the plain dot on both) */
                if (j->kern->vec_dot_4x4[j->type] && re - rb == ROW_BLOCK)
                    for (; t + 4 <= t1; t += 4) {
                        float s16[16];
                        j->kern->vec_dot_4x4[j->type](j->n_in, s16, j->w + rb * j->w_row_bytes, j->w_row_bytes,
                                                      j->xq + t * j->xq_row_bytes, j->xq_row_bytes);
                        for (int c = 0; c < 4; c++)
                            for (int r = 0; r < 4; r++) j->y[(t + c) * j->y_stride + rb + r] = s16[c * 4 + r];
                    }
                else if (j->kern->vec_dot_4c[j->type] && re - rb == ROW_BLOCK)
                    for (; t + 4 <= t1; t += 4)
                        for (int64_t r = rb; r < re; r++) {
                            float s4[4];
                            j->kern->vec_dot_4c[j->type](j->n_in, s4, j->w + r * j->w_row_bytes,
                                                         j->xq + t * j->xq_row_bytes, j->xq_row_bytes);
                            for (int c = 0; c < 4; c++) j->y[(t + c) * j->y_stride + r] = s4[c];
                        }
                for (; t < t1; t++) {
                    const char *xt = j->xq + t * j->xq_row_bytes;
                    float *yt = j->y + t * j->y_stride;
                    if (re - rb == ROW_BLOCK && j->kern->vec_dot_4r[j->type]) /* activation loaded once for 4 rows */
                        j->kern->vec_dot_4r[j->type](j->n_in, &yt[rb], j->w + rb * j->w_row_bytes, j->w_row_bytes, xt);
                    else
                        for (int64_t r = rb; r < re; r++) j->dot(j->n_in, &yt[r], j->w + r * j->w_row_bytes, xt);
                }
            }
        }
    }
}

int ckls_matmul_pre(ckls_pool *pool, int type, const void *w, int64_t n_out, int64_t n_in, const void *xq,
                    int64_t xq_row_bytes, int64_t n_tok, float *y, int64_t y_stride, const volatile int32_t *cancel) {
    matmul_job j = {
        .kern = ckls_active_kernels(), .type = type,
        .dot = ckls_active_kernels()->vec_dot[type],
        .w = w, .w_row_bytes = ckls_row_bytes(type, n_in), .n_out = n_out, .n_in = n_in,
        .xq = xq, .xq_row_bytes = xq_row_bytes, .n_tok = n_tok, .y = y, .y_stride = y_stride,
    };
    if (!j.dot) return ckls_fail(CKLS_EINVAL, "no dot kernel for type %d", type);
    const int nth = ckls_pool_threads(pool);
    /* Enough chunks for balance (8 per thread), each a multiple of ROW_BLOCK. */
    int64_t chunk = (n_out + nth * 8 - 1) / (nth * 8);
    chunk = (chunk + ROW_BLOCK - 1) / ROW_BLOCK * ROW_BLOCK;
    j.chunk = chunk < ROW_BLOCK ? ROW_BLOCK : chunk;
    ckls_queue_init(&j.q, cancel);
    ckls_pool_run(nth > 1 && n_out * n_tok >= 64 ? pool : NULL, matmul_task, &j);
    return ckls_queue_stopped(&j.q) ? ckls_fail(CKLS_ECANCELLED, "cancelled") : CKLS_OK;
}

typedef struct {
    ckls_from_float_fn q;
    void (*a7)(const float *x, void *y, int64_t n, int32_t *off, float *d); /* quantize_a7 instead of q */
    const float *x;
    char *xq;
    int64_t n_in, n_tok, row_bytes;
    int32_t *off; /* a7 block terms, or NULL */
    float *xd;
} quant_job;

static void quant_task(void *p, int ith, int nth) {
    quant_job *j = p;
    const int64_t nb = j->n_in / QK8_0;
    /* contiguous rows a thread: interleaved ones would share the cache lines where rows meet */
    for (int64_t t = j->n_tok * ith / nth; t < j->n_tok * (ith + 1) / nth; t++)
        if (j->a7)
            j->a7(j->x + t * j->n_in, j->xq + t * j->row_bytes, j->n_in, j->off ? j->off + t * nb : NULL,
                  j->off ? j->xd + t * nb : NULL);
        else j->q(j->x + t * j->n_in, j->xq + t * j->row_bytes, j->n_in);
}

void ckls_quantize_acts(ckls_pool *pool, int act_type, const float *x, void *xq, int64_t n_in, int64_t n_tok) {
    quant_job j = {ckls_active_kernels()->quantize_act[act_type], NULL, x, xq, n_in, n_tok,
                   ckls_row_bytes(act_type, n_in), NULL, NULL};
    ckls_pool_run(n_tok > 1 ? pool : NULL, quant_task, &j);
}

void ckls_quantize_acts_a7(ckls_pool *pool, const float *x, void *xq, int64_t n_in, int64_t n_tok, int32_t *off,
                           float *xd) {
    quant_job j = {NULL, ckls_active_kernels()->quantize_a7, x, xq, n_in, n_tok, ckls_row_bytes(CKLS_TYPE_Q8_0, n_in),
                   off, xd};
    ckls_pool_run(n_tok > 1 ? pool : NULL, quant_task, &j);
}

int ckls_matmul_c(ckls_pool *pool, int type, const void *w, int64_t n_out, int64_t n_in, const float *x,
                  int64_t n_tok, float *y, const volatile int32_t *cancel) {
    if (!ckls_type_supported(type)) return ckls_fail(CKLS_EINVAL, "unsupported weight type %d", type);
    if (n_out < 0 || n_in < 0 || n_tok < 0) return ckls_fail(CKLS_EINVAL, "negative matmul size");
    if (ckls_row_bytes(type, n_in) < 0)
        return ckls_fail(CKLS_EINVAL, "row length %lld is not a multiple of the block size", (long long)n_in);
    const int act = ckls_type_vec_dot_type(type);
    const int64_t arb = ckls_row_bytes(act, n_in);
    if (arb < 0) return ckls_fail(CKLS_EINVAL, "row length %lld does not fit activation format", (long long)n_in);
    if (n_out == 0 || n_tok == 0) return CKLS_OK;
    if (!w || !x || !y) return ckls_fail(CKLS_EINVAL, "NULL buffer");
    void *xq = ckls_aligned_alloc((size_t)(arb * n_tok));
    if (!xq) return ckls_fail(CKLS_ENOMEM, "out of memory for %lld activation bytes", (long long)(arb * n_tok));
    ckls_quantize_acts(pool, act, x, xq, n_in, n_tok);
    int rc = ckls_matmul_pre(pool, type, w, n_out, n_in, xq, arb, n_tok, y, n_out, cancel);
    ckls_aligned_free(xq);
    return rc;
}

int ckls_matmul(ckls_pool *pool, int type, const void *w, int64_t n_out, int64_t n_in, const float *x,
                int64_t n_tok, float *y) {
    return ckls_matmul_c(pool, type, w, n_out, n_in, x, n_tok, y, NULL);
}

/* ---- interleaved 8-row groups ------------------------------------------------------------------------------ */

typedef struct {
    void (*gemm)(int64_t n, float *s, int64_t s_stride, const void *w, const void *xq, int64_t x_stride,
                 const int16_t *aux, int nt);
    void (*gemm2)(int64_t n, float *s, int64_t s_stride, const void *w, int64_t w_stride, const void *xq,
                  int64_t x_stride, const int16_t *aux, int nt); /* two adjacent groups, or NULL */
    void (*tiles)(int64_t n, float *s, int64_t s_stride, const void *w, int64_t w_row_bytes, int64_t n_tiles,
                  const int8_t *xb, const float *xd, int64_t nt); /* 16-row tiles x 16-token tiles, or NULL */
    const int8_t *xb; /* the tile kernel's activations (ckls_q8_0_tiles_pack), or NULL */
    const float *xd;
    ckls_vec_dot_fn dot;
    ckls_vec_dot_4r_fn dot_4r;
    const char *w, *packed;
    int64_t w_row_bytes, group_bytes, n_groups, n_out, n_in;
    const char *xq;
    int64_t xq_row_bytes, n_tok;
    const int16_t *aux; /* n_aux per token, or NULL */
    int64_t n_aux;
    void (*a7)(int64_t n, float *s, int64_t s_stride, const void *w, const void *xq, int64_t x_stride,
               const int32_t *off, const float *xd, int nt); /* gemm_x8_a7 instead of gemm, or NULL */
    const int32_t *off; /* its block terms, n_aux per token */
    const float *xd7;
    const ckls_epilogue *ep; /* on each block of outputs once final, or NULL */
    ckls_gemm_tile_fn tile;
    float *y;
    int64_t y_stride;
    int64_t chunk;     /* groups per hand-out */
    int64_t tok_range; /* tokens per hand-out: all, or a multiple of 16 (whole tiles) */
    ckls_queue q;
} packed_job;

/* ep on outputs y[t0..t1) x [r0..r1) */
static void epilogue_run(ckls_gemm_tile_fn tile, const ckls_epilogue *ep, int64_t n_out, float *y, int64_t y_stride,
                         int64_t t0, int64_t t1, int64_t r0, int64_t r1) {
    if (t1 <= t0 || r1 <= r0) return;
    if (ep->u)
        tile(t1 - t0, r1 - r0, ep->r, ep->scale, ep->u + t0 * ep->r, ep->r, 1, ep->bt + r0, n_out, 1,
             y + t0 * y_stride + r0, y_stride);
    if (ep->acc)
        for (int64_t t = t0; t < t1; t++) {
            float *a = ep->acc + t * y_stride;
            const float *v = y + t * y_stride;
            for (int64_t r = r0; r < r1; r++) a[r] += v[r];
        }
}

static void packed_task(void *p, int ith, int nth) {
    packed_job *j = p;
    /* groups, then one more "group" for the tail rows (in the original layout, plain row dots); a hand-out is a chunk
     * of them over one range of tokens, the ranges of a chunk one after another */
    const int64_t n_units = j->n_groups + (j->n_out > j->n_groups * CKLS_PACK_ROWS);
    const int64_t n_ranges = (j->n_tok + j->tok_range - 1) / j->tok_range;
    const int64_t n_items = (n_units + j->chunk - 1) / j->chunk * n_ranges;
    for (int64_t it; (it = ckls_queue_take(&j->q, n_items, 1)) >= 0;) {
        const int64_t g0 = it / n_ranges * j->chunk, g1 = g0 + j->chunk < n_units ? g0 + j->chunk : n_units;
        const int64_t ta = it % n_ranges * j->tok_range;
        const int64_t tb = ta + j->tok_range < j->n_tok ? ta + j->tok_range : j->n_tok;
        /* groups g0 .. gt-1 have their tokens ta .. nt_tiles-1 from the tile kernel (whole 16-token tiles) */
        int64_t gt = g0, nt_tiles = 0;
        if (j->tiles) {
            const int64_t ge = g1 < j->n_groups ? g1 : j->n_groups;
            gt = ge > g0 ? g0 + (ge - g0) / 2 * 2 : g0;
            nt_tiles = j->n_tok / 16 * 16 < tb ? j->n_tok / 16 * 16 : tb;
            if (gt > g0 && nt_tiles > ta)
                j->tiles(j->n_in, j->y + ta * j->y_stride + g0 * CKLS_PACK_ROWS, j->y_stride,
                         j->w + g0 * CKLS_PACK_ROWS * j->w_row_bytes, j->w_row_bytes, (gt - g0) / 2,
                         j->xb + ta * j->n_in, j->xd + ta * j->n_aux, nt_tiles - ta);
        }
        for (int64_t t0 = ta; t0 < tb; t0 += TOK_BLOCK) {
            const int64_t t1 = t0 + TOK_BLOCK < tb ? t0 + TOK_BLOCK : tb;
            for (int64_t g = g0; g < g1; g++) {
                if (g == j->n_groups) { /* tail rows: as ckls_matmul_pre does them (4-row kernel, then row dots) */
                    for (int64_t t = t0; t < t1; t++) {
                        int64_t r = g * CKLS_PACK_ROWS;
                        if (j->dot_4r)
                            for (; r + 4 <= j->n_out; r += 4)
                                j->dot_4r(j->n_in, &j->y[t * j->y_stride + r], j->w + r * j->w_row_bytes,
                                          j->w_row_bytes, j->xq + t * j->xq_row_bytes);
                        for (; r < j->n_out; r++)
                            j->dot(j->n_in, &j->y[t * j->y_stride + r], j->w + r * j->w_row_bytes,
                                   j->xq + t * j->xq_row_bytes);
                    }
                    continue;
                }
                const int pair = j->gemm2 && g + 1 < g1 && g + 1 < j->n_groups;
                /* a tiled pair (g < gt: g, g + 1 both) starts past its tiles */
                for (int64_t t = g < gt && t0 < nt_tiles ? (nt_tiles < t1 ? nt_tiles : t1) : t0; t < t1;) {
                    const int64_t left = t1 - t;
                    float *yt = j->y + t * j->y_stride + g * CKLS_PACK_ROWS;
                    const char *wg = j->packed + g * j->group_bytes, *xt = j->xq + t * j->xq_row_bytes;
                    const int16_t *at = j->aux ? j->aux + t * j->n_aux : NULL;
                    if (pair && left >= X16_MIN_TOKENS) { /* 16 rows x up to 8 tokens per call */
                        const int nt = (int)(left < 8 ? left : 8);
                        j->gemm2(j->n_in, yt, j->y_stride, wg, j->group_bytes, xt, j->xq_row_bytes, at, nt);
                        t += nt;
                    } else {
                        const int nt = (int)(left < 4 ? left : 4);
                        if (j->a7)
                            j->a7(j->n_in, yt, j->y_stride, wg, xt, j->xq_row_bytes, j->off + t * j->n_aux,
                                  j->xd7 + t * j->n_aux, nt);
                        else
                            j->gemm(j->n_in, yt, j->y_stride, wg, xt, j->xq_row_bytes, at, nt);
                        if (pair)
                            j->gemm(j->n_in, yt + CKLS_PACK_ROWS, j->y_stride, wg + j->group_bytes, xt, j->xq_row_bytes, at, nt);
                        t += nt;
                    }
                }
                g += pair;
            }
            /* the block's outputs are final (a tiled pair's tokens were done before this loop) */
            if (j->ep)
                epilogue_run(j->tile, j->ep, j->n_out, j->y, j->y_stride, t0, t1, g0 * CKLS_PACK_ROWS,
                            g1 * CKLS_PACK_ROWS < j->n_out ? g1 * CKLS_PACK_ROWS : j->n_out);
        }
    }
}

/* ep over all outputs, by token ranges (after a product without the packed path) */
typedef struct {
    const ckls_epilogue *ep;
    float *y;
    int64_t y_stride, n_tok, n_out;
} epilogue_job;

static void epilogue_task(void *p, int ith, int nth) {
    const epilogue_job *j = p;
    epilogue_run(ckls_active_kernels()->gemm_tile, j->ep, j->n_out, j->y, j->y_stride, j->n_tok * ith / nth,
                j->n_tok * (ith + 1) / nth, 0, j->n_out);
}

typedef struct {
    const char *xq;
    int64_t xs, n, n_tiles;
    int8_t *xb;
    float *xd;
} tiles_pack_job;

static void tiles_pack_task(void *p, int ith, int nth) {
    tiles_pack_job *j = p;
    const int64_t nb = j->n / QK8_0, t0 = j->n_tiles * ith / nth, t1 = j->n_tiles * (ith + 1) / nth;
    ckls_q8_0_tiles_pack(j->xq + 16 * t0 * j->xs, j->xs, j->n, 16 * (t1 - t0), j->xb + 16 * t0 * j->n,
                         j->xd + 16 * t0 * nb);
}

/* hands a job's groups out over the pool */
static int run_packed(ckls_pool *pool, packed_job *j) {
    const int nth = ckls_pool_threads(pool);
    const int64_t n_units = j->n_groups + 1;
    int64_t chunk = (n_units + nth * 8 - 1) / (nth * 8);
    if (j->gemm2) chunk += chunk & 1; /* even, so the 16-row kernel's pairs stay within a chunk */
    j->chunk = chunk < 1 ? 1 : chunk;
    /* a prompt's tokens in ranges too: a chunk over all of them is a twelfth of the work, which left one thread
     * idle at the end for up to that long */
    j->tok_range = j->n_tok >= 2 * TOK_RANGE ? TOK_RANGE : j->n_tok > 0 ? j->n_tok : 1;
    ckls_pool_run(nth > 1 && j->n_out * j->n_tok >= 64 ? pool : NULL, packed_task, j);
    return ckls_queue_stopped(&j->q) ? ckls_fail(CKLS_ECANCELLED, "cancelled") : CKLS_OK;
}

/* terms: Q8_0 against 7-bit activations, through gemm_x8_a7 alone (no 16-row or tile kernel) */
int ckls_matmul_packed_ep(ckls_pool *pool, int type, const void *w, const void *packed, int64_t n_out, int64_t n_in,
                          const void *xq, int64_t xq_row_bytes, int64_t n_tok, float *y, int64_t y_stride,
                          const volatile int32_t *cancel, const ckls_a7_terms *terms, const ckls_epilogue *ep) {
    const ckls_isa_kernels *k = ckls_active_kernels();
    const int64_t pbytes = ckls_packed_bytes(type, n_out, n_in);
    const int a7 = terms && type == CKLS_TYPE_Q8_0 && k->gemm_x8_a7;
    if (!packed || !k->gemm_x8[type] || pbytes <= 0) {
        const int rc = ckls_matmul_pre(pool, type, w, n_out, n_in, xq, xq_row_bytes, n_tok, y, y_stride, cancel);
        epilogue_job ej = {ep, y, y_stride, n_tok, n_out};
        if (!rc && ep) ckls_pool_run(n_tok > 1 ? pool : NULL, epilogue_task, &ej);
        return rc;
    }
    packed_job j = {
        .gemm = k->gemm_x8[type], .gemm2 = a7 ? NULL : k->gemm_x16[type], .a7 = a7 ? k->gemm_x8_a7 : NULL,
        .dot = k->vec_dot[type], .dot_4r = k->vec_dot_4r[type], .w = w, .packed = packed,
        .tiles = !a7 && n_tok >= 16 && n_in / QK8_0 <= CKLS_TILES_MAX_BLOCKS ? k->gemm_tiles[type] : NULL,
        .w_row_bytes = ckls_row_bytes(type, n_in), .n_groups = n_out / CKLS_PACK_ROWS, .n_out = n_out, .n_in = n_in,
        .xq = xq, .xq_row_bytes = xq_row_bytes, .n_tok = n_tok, .y = y, .y_stride = y_stride,
        .ep = ep, .tile = k->gemm_tile, .off = a7 ? terms->off : NULL, .xd7 = a7 ? terms->xd : NULL,
    };
    ckls_queue_init(&j.q, cancel);
    j.group_bytes = pbytes / j.n_groups;
    int16_t *aux = NULL;
    j.n_aux = n_in / QK8_0;
    if (k->gemm_aux[type] && !a7) {
        /* Q4_0's -8 offset (and the VNNI Q8_0 kernel's +128) needs each activation block's sum: once per token */
        aux = malloc(sizeof(int16_t) * (size_t)(j.n_aux * n_tok));
        if (!aux) return ckls_fail(CKLS_ENOMEM, "out of memory for activation block sums");
        ckls_q8_0_block_sums(xq, xq_row_bytes, n_in, n_tok, aux);
        j.aux = aux;
    }
    if (a7) return run_packed(pool, &j);
    int8_t *xb = NULL;
    float *xd = NULL;
    if (j.tiles) { /* the whole 16-token tiles' activations in the tile kernel's layout, once per matmul */
        const int64_t nt = n_tok / 16 * 16;
        xb = ckls_aligned_alloc((size_t)(nt * n_in));
        xd = ckls_aligned_alloc(sizeof(float) * (size_t)(nt * (n_in / QK8_0)));
        if (!xb || !xd) {
            free(aux);
            ckls_aligned_free(xb);
            ckls_aligned_free(xd);
            return ckls_fail(CKLS_ENOMEM, "out of memory for the tile kernel's activations");
        }
        tiles_pack_job pj = {xq, xq_row_bytes, n_in, nt / 16, xb, xd};
        ckls_pool_run(nt > 16 ? pool : NULL, tiles_pack_task, &pj);
        j.xb = xb;
        j.xd = xd;
    }
    const int rc = run_packed(pool, &j);
    free(aux);
    ckls_aligned_free(xb);
    ckls_aligned_free(xd);
    return rc;
}

int ckls_matmul_packed(ckls_pool *pool, int type, const void *w, const void *packed, int64_t n_out, int64_t n_in,
                       const void *xq, int64_t xq_row_bytes, int64_t n_tok, float *y, int64_t y_stride,
                       const volatile int32_t *cancel) {
    return ckls_matmul_packed_ep(pool, type, w, packed, n_out, n_in, xq, xq_row_bytes, n_tok, y, y_stride, cancel,
                                 NULL, NULL);
}

int ckls_matmul_packed_a7(ckls_pool *pool, int type, const void *w, const void *packed, int64_t n_out, int64_t n_in,
                          const void *xq, int64_t xq_row_bytes, int64_t n_tok, float *y, int64_t y_stride,
                          const volatile int32_t *cancel) {
    const size_t n = (size_t)(n_in / QK8_0 * n_tok);
    int32_t *off = malloc(sizeof(int32_t) * (n ? n : 1));
    float *xd = malloc(sizeof(float) * (n ? n : 1));
    int rc = off && xd ? CKLS_OK : ckls_fail(CKLS_ENOMEM, "out of memory for activation block terms");
    if (!rc) {
        ckls_q8_0_a7_terms(xq, xq_row_bytes, n_in, n_tok, off, xd);
        rc = ckls_matmul_packed_ep(pool, type, w, packed, n_out, n_in, xq, xq_row_bytes, n_tok, y, y_stride, cancel,
                                   &(ckls_a7_terms){off, xd}, NULL);
    }
    free(off);
    free(xd);
    return rc;
}

typedef struct {
    int type;
    const void *w;
    int64_t n_in, n_groups;
    void *dst;
} repack_job;

static void repack_task(void *p, int ith, int nth) {
    repack_job *j = p;
    ckls_repack_groups(j->type, j->w, j->n_in, j->n_groups * ith / nth, j->n_groups * (ith + 1) / nth, j->dst);
}

void *ckls_repack_matrix(ckls_pool *pool, int type, const void *w, int64_t n_out, int64_t n_in, int64_t *bytes) {
    *bytes = 0;
    const int64_t pb = ckls_packed_bytes(type, n_out, n_in);
    if (pb <= 0 || !ckls_active_kernels()->gemm_x8[type]) return NULL;
    void *dst = ckls_aligned_alloc((size_t)pb);
    if (!dst) {
        *bytes = -1;
        return NULL;
    }
    repack_job j = {type, w, n_in, n_out / CKLS_PACK_ROWS, dst};
    ckls_pool_run(pool, repack_task, &j);
    *bytes = pb;
    return dst;
}
