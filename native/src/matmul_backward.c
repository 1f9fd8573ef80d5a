/* matmul_backward.c — the f32 GEMMs of training and dX = dY.W through frozen quantized weights.
 *
 * Both split C into column blocks (and row blocks for the plain GEMM) handed out through an atomic counter;
 * inside a block the ISA's tile kernel sweeps every row against a K-slice of B that stays in L1/L2. For dX the
 * K-slice is a tile of W dequantized into a stack buffer (weights stay quantized in memory: each weight is
 * unpacked once per step, then reused by every token). */
#include <math.h>
#include <stdatomic.h>

#include "backward.h"

#define GEMM_MB 64  /* rows of C per work item */
#define GEMM_NB 64  /* columns of C per work item */
#define GEMM_KB 256 /* K per pass: a 64-column slice of B is 64 KB */
/* weight rows per dequantized tile: dX's block is swept once per tile, so a deep tile pays (the vocabulary's dX on
 * AVX2, 1,024 tokens: 64 rows 140 ms, 128 125, 512 103) */
#define DX_KB 512
#define DX_NB_MAX 256

/* ---- f32 GEMM ---------------------------------------------------------------------------------------------------- */
typedef struct {
    ckls_gemm_tile_fn tile;
    int64_t M, N, K;
    float alpha;
    const float *A;
    int64_t a_si, a_sk;
    const float *B;
    int64_t ldb;
    int accumulate;
    float *C;
    int64_t ldc, n_mb, n_items;
    atomic_llong next;
} gemm_job;

static void gemm_task(void *p, int ith, int nth) {
    gemm_job *j = p;
    float panel[GEMM_KB * GEMM_NB] __attribute__((aligned(64))); /* B's slice, packed: rows contiguous */
    for (;;) {
        const int64_t it = atomic_fetch_add(&j->next, 1);
        if (it >= j->n_items) break;
        const int64_t i0 = (it % j->n_mb) * GEMM_MB, j0 = (it / j->n_mb) * GEMM_NB;
        const int64_t m = j->M - i0 < GEMM_MB ? j->M - i0 : GEMM_MB, n = j->N - j0 < GEMM_NB ? j->N - j0 : GEMM_NB;
        for (int64_t k0 = 0; k0 < j->K || k0 == 0; k0 += GEMM_KB) {
            const int64_t kk = j->K - k0 < GEMM_KB ? j->K - k0 : GEMM_KB;
            const float *b = j->B + k0 * j->ldb + j0;
            int64_t ldb = j->ldb;
            if (m > 8 && ldb != n) { /* reused by many rows: worth a contiguous copy */
                for (int64_t r = 0; r < kk; r++) memcpy(panel + r * n, b + r * j->ldb, sizeof(float) * (size_t)n);
                b = panel;
                ldb = n;
            }
            j->tile(m, n, kk, j->alpha, j->A + i0 * j->a_si + k0 * j->a_sk, j->a_si, j->a_sk, b, ldb,
                    j->accumulate || k0 > 0, j->C + i0 * j->ldc + j0, j->ldc);
        }
    }
}

void ckls_gemm(ckls_pool *pool, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t a_si,
               int64_t a_sk, const float *B, int64_t ldb, int accumulate, float *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    gemm_job j = {.tile = ckls_active_kernels()->gemm_tile, .M = M, .N = N, .K = K, .alpha = alpha, .A = A, .a_si = a_si,
                  .a_sk = a_sk, .B = B, .ldb = ldb, .accumulate = accumulate, .C = C, .ldc = ldc,
                  .n_mb = (M + GEMM_MB - 1) / GEMM_MB};
    j.n_items = j.n_mb * ((N + GEMM_NB - 1) / GEMM_NB);
    atomic_init(&j.next, 0);
    ckls_pool_run(j.n_items > 1 && M * N * (K + 1) >= 32768 ? pool : NULL, gemm_task, &j);
}

/* C (=|+=) alpha * A.W^T by blocks of GEMM_MB rows over the pool (the row dots: a narrow W stays in L1) */
typedef struct {
    int64_t M, N, K, lda, ldw, ldc;
    float alpha;
    const float *A, *W;
    float *C;
    int accumulate;
    atomic_llong next;
} gemm_nt_job;

static void gemm_nt_task(void *p, int ith, int nth) {
    gemm_nt_job *j = p;
    const ckls_gemm_nt_fn nt = ckls_active_kernels()->gemm_nt;
    for (int64_t i0; (i0 = atomic_fetch_add(&j->next, 1) * GEMM_MB) < j->M;)
        nt(j->M - i0 < GEMM_MB ? j->M - i0 : GEMM_MB, j->N, j->K, j->alpha, j->A + i0 * j->lda, j->lda, j->W, j->ldw,
           j->accumulate, j->C + i0 * j->ldc, j->ldc);
}

void ckls_gemm_nt(ckls_pool *pool, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                  const float *W, int64_t ldw, int accumulate, float *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    gemm_nt_job j = {.M = M, .N = N, .K = K, .lda = lda, .ldw = ldw, .ldc = ldc, .alpha = alpha, .A = A, .W = W,
                     .C = C, .accumulate = accumulate};
    atomic_init(&j.next, 0);
    ckls_pool_run(M > GEMM_MB && M * N * (K + 1) >= 32768 ? pool : NULL, gemm_nt_task, &j);
}

int ckls_gemm_f32(ckls_pool *pool, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t a_si,
                  int64_t a_sk, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M < 0 || N < 0 || K < 0 || (beta != 0.0f && beta != 1.0f) || ldc < N || ldb < N || a_si < 0 || a_sk < 0)
        return ckls_fail(CKLS_EINVAL, "gemm_f32: bad sizes or strides");
    if (M == 0 || N == 0) return CKLS_OK;
    if (!C || (K > 0 && (!A || !B))) return ckls_fail(CKLS_EINVAL, "gemm_f32: NULL buffer");
    ckls_gemm(pool, M, N, K, alpha, A, a_si, a_sk, B, ldb, beta != 0.0f, C, ldc);
    return CKLS_OK;
}

/* dY.W over an empty K (no rows of W): dx = 0, or unchanged when accumulating; 0, the dX drivers' "not cancelled" */
static int dx_over_empty_k(float *dx, int64_t n_tok, int64_t n_in, int accumulate) {
    if (!accumulate) for (int64_t t = 0; t < n_tok; t++) memset(dx + t * n_in, 0, sizeof(float) * (size_t)n_in);
    return 0;
}

/* ---- dX through a frozen weight ------------------------------------------------------------------------------- */
typedef struct {
    ckls_gemm_tile_fn tile;
    ckls_to_float_fn to_float;
    const char *w;
    int64_t row_bytes, blck, blck_bytes, n_out, n_in, n_tok, nb;
    const float *dy;
    float *dx;
    float *tiles; /* DX_KB x DX_NB_MAX floats a thread */
    int accumulate;
    ckls_queue q;
} dx_job;

static void dx_task(void *p, int ith, int nth) {
    dx_job *j = p;
    float *tile = j->tiles + (int64_t)ith * DX_KB * DX_NB_MAX;
    const int64_t n_items = (j->n_in + j->nb - 1) / j->nb;
    for (int64_t it; (it = ckls_queue_take(&j->q, n_items, 1)) >= 0;) {
        const int64_t j0 = it * j->nb, n = j->n_in - j0 < j->nb ? j->n_in - j0 : j->nb; /* n: a block multiple */
        const char *wcol = j->w + j0 / j->blck * j->blck_bytes;
        for (int64_t k0 = 0; k0 < j->n_out; k0 += DX_KB) {
            /* polled per tile too: an item of the vocabulary projection is ~50 ms on one core */
            if (ckls_queue_cancelled(&j->q)) return;
            const int64_t kk = j->n_out - k0 < DX_KB ? j->n_out - k0 : DX_KB;
            for (int64_t r = 0; r < kk; r++) j->to_float(wcol + (k0 + r) * j->row_bytes, tile + r * n, n);
            j->tile(j->n_tok, n, kk, 1.0f, j->dy + k0, j->n_out, 1, tile, n, j->accumulate || k0 > 0, j->dx + j0,
                    j->n_in);
        }
    }
}

int ckls_matmul_dx(ckls_pool *pool, int type, const void *w, int64_t n_out, int64_t n_in, const float *dy,
                   int64_t n_tok, float *dx, int accumulate, const volatile int32_t *cancel) {
    const ckls_type_info *ti = ckls_type_get(type);
    dx_job j = {.tile = ckls_active_kernels()->gemm_tile, .to_float = ti->to_float, .w = w,
                .row_bytes = ckls_row_bytes(type, n_in), .blck = ti->blck, .blck_bytes = ti->size, .n_out = n_out,
                .n_in = n_in, .n_tok = n_tok, .dy = dy, .dx = dx, .accumulate = accumulate};
    /* 64 columns (a multiple of 32-blocks) or one 256-block; 128 where that still leaves two items a thread, 256
     * where that gives each thread the same whole number of items: each item reads all of dY, which for the
     * vocabulary projection is 64 MB at 1,024 tokens (at 512 columns, 256 saves 5 ms a step) */
    const int nth_dx = ckls_pool_threads(pool);
    j.nb = ti->blck > 64 ? ti->blck : n_in % (256 * nth_dx) == 0 ? 256 : n_in >= 128 * 2 * nth_dx ? 128 : 64;
    ckls_queue_init(&j.q, cancel);
    if (n_out == 0) return dx_over_empty_k(dx, n_tok, n_in, accumulate);
    const int nth = n_in > j.nb ? nth_dx : 1;
    j.tiles = ckls_aligned_alloc(sizeof(float) * (size_t)(nth * DX_KB * DX_NB_MAX));
    if (!j.tiles) return ckls_fail(CKLS_ENOMEM, "out of memory for dX's weight tiles");
    ckls_pool_run(nth > 1 ? pool : NULL, dx_task, &j);
    ckls_aligned_free(j.tiles);
    return ckls_queue_stopped(&j.q);
}

/* ---- dX in bf16 (the integer mode's vocabulary projection, where the CPU has gemm_tile_bf16) ----------------- */
/* W as bf16 pairs down its rows (n_out / 2 rows of n_in pairs): 16 MB for the shipped model's vocabulary.
 * NULL (and CKLS_ENOMEM set) when out of memory. */
uint32_t *ckls_bf16_weight_pairs(int type, const void *w, int64_t n_out, int64_t n_in) {
    const ckls_isa_kernels *kr = ckls_active_kernels();
    const ckls_bf16_conv_fn pairs = kr->bf16_pairs ? kr->bf16_pairs : ckls_bf16_pairs_ref;
    const int64_t rb = ckls_row_bytes(type, n_in);
    uint32_t *w2 = ckls_aligned_alloc(sizeof(uint32_t) * (size_t)((n_out + 1) / 2 * n_in));
    float *two = ckls_aligned_alloc(sizeof(float) * (size_t)(2 * n_in));
    if (!w2 || !two) {
        ckls_aligned_free(w2);
        ckls_aligned_free(two);
        ckls_fail(CKLS_ENOMEM, "out of memory for a bf16 copy of a %lld x %lld matrix", (long long)n_out,
                  (long long)n_in);
        return NULL;
    }
    for (int64_t r = 0; r < n_out; r += 2) {
        const int64_t rows = n_out - r < 2 ? n_out - r : 2;
        for (int64_t i = 0; i < rows; i++)
            ckls_dequantize_row(type, (const char *)w + (r + i) * rb, two + i * n_in, n_in);
        pairs(two, rows, n_in, n_in, w2 + r / 2 * n_in, n_in);
    }
    ckls_aligned_free(two);
    return w2;
}

/* Work items are blocks of DXB_M rows of dY (tokens): each converts its rows to bf16 pairs along the row into the
 * thread's scratch (so dY, tens of MB for the vocabulary, is read once), then sweeps W's pairs DXB_KP at a time
 * (a 512 KB slice at n_in 512, kept in L2) into its rows of dX. */
#define DXB_M 64
#define DXB_KP 256

typedef struct {
    ckls_gemm_tile_bf16_fn tile;
    ckls_bf16_conv_fn rows;
    const uint32_t *w2;
    int64_t n_out, n_in, n_tok;
    const float *dy;
    float *dx;
    uint32_t *scratch;
    int accumulate;
    ckls_queue q;
} dxb_job;

static void dxb_task(void *p, int ith, int nth) {
    dxb_job *j = p;
    const int64_t kp = (j->n_out + 1) / 2, n_items = (j->n_tok + DXB_M - 1) / DXB_M;
    uint32_t *a = j->scratch + (int64_t)ith * DXB_M * kp;
    for (int64_t it; (it = ckls_queue_take(&j->q, n_items, 1)) >= 0;) {
        const int64_t t0 = it * DXB_M, m = j->n_tok - t0 < DXB_M ? j->n_tok - t0 : DXB_M;
        j->rows(j->dy + t0 * j->n_out, m, j->n_out, j->n_out, a, kp);
        for (int64_t p0 = 0; p0 < kp; p0 += DXB_KP) {
            if (ckls_queue_cancelled(&j->q)) return;
            const int64_t pp = kp - p0 < DXB_KP ? kp - p0 : DXB_KP;
            j->tile(m, j->n_in, pp, 1.0f, a + p0, kp, 1, j->w2 + p0 * j->n_in, j->n_in, j->accumulate || p0 > 0,
                    j->dx + t0 * j->n_in, j->n_in);
        }
    }
}

int64_t ckls_matmul_dx_bf16_scratch(int nth, int64_t n_out) { return (int64_t)nth * DXB_M * ((n_out + 1) / 2); }

int ckls_matmul_dx_bf16(ckls_pool *pool, const uint32_t *w2, int64_t n_out, int64_t n_in, const float *dy,
                        int64_t n_tok, float *dx, int accumulate, uint32_t *scratch, const volatile int32_t *cancel) {
    const ckls_isa_kernels *kr = ckls_active_kernels();
    dxb_job j = {.tile = kr->gemm_tile_bf16, .rows = kr->bf16_rows, .w2 = w2, .n_out = n_out, .n_in = n_in,
                 .n_tok = n_tok, .dy = dy, .dx = dx, .scratch = scratch, .accumulate = accumulate};
    ckls_queue_init(&j.q, cancel);
    if (n_out == 0) return dx_over_empty_k(dx, n_tok, n_in, accumulate);
    ckls_pool_run(n_tok > DXB_M ? pool : NULL, dxb_task, &j);
    return ckls_queue_stopped(&j.q);
}

/* ---- dX in int16 (the integer mode's vocabulary projection where there is no gemm_tile_bf16: gemm_i16.c) -------- */
/* Work items are blocks of tokens (up to DXI_M, so that every thread gets two): each quantizes its rows of dY into
 * the thread's scratch (dY, 64 MB for the vocabulary at 1,024 tokens, is read once), then for each slice of
 * DXI_KB blocks of W^T (278 KB at n_in 512, in L2) takes its tokens four at a time (4 KB, in L1) across every
 * pair of 8-column groups. */
#define DXI_M 256
#define DXI_KB 16

typedef struct {
    ckls_quantize_i16_fn quantize;
    ckls_gemm_i16x8_fn gemm;
    const block_i16x8 *wt;
    int64_t n_out, n_in, n_tok, nb, m_item;
    const float *dy;
    float *dx;
    void *scratch;
    int accumulate;
    ckls_queue q;
} dxi_job;

static void dxi_task(void *p, int ith, int nth) {
    dxi_job *j = p;
    const int64_t nb = j->nb, lq = nb * CKLS_I16_BLOCK, ng = j->n_in / 8;
    const int64_t n_items = (j->n_tok + j->m_item - 1) / j->m_item;
    int16_t *q = (int16_t *)((char *)j->scratch + (size_t)ith * (size_t)ckls_matmul_dx_i16_scratch(1, j->n_out));
    float *s = (float *)(q + DXI_M * lq);
    for (int64_t it; (it = ckls_queue_take(&j->q, n_items, 1)) >= 0;) {
        const int64_t t0 = it * j->m_item, m = j->n_tok - t0 < j->m_item ? j->n_tok - t0 : j->m_item;
        for (int64_t r = 0; r < m; r++) j->quantize(j->dy + (t0 + r) * j->n_out, q + r * lq, j->n_out, s + r * nb);
        for (int64_t k0 = 0; k0 < nb; k0 += DXI_KB) {
            if (ckls_queue_cancelled(&j->q)) return;
            const int64_t kb = nb - k0 < DXI_KB ? nb - k0 : DXI_KB;
            for (int64_t r = 0; r < m; r += 4)
                for (int64_t g = 0; g < ng; g += 2)
                    j->gemm(kb, q + r * lq + k0 * CKLS_I16_BLOCK, lq, s + r * nb + k0, nb, j->wt + g * nb + k0, nb,
                            j->dx + (t0 + r) * j->n_in + 8 * g, j->n_in, m - r < 4 ? (int)(m - r) : 4,
                            j->accumulate || k0 > 0);
        }
    }
}

int64_t ckls_matmul_dx_i16_scratch(int nth, int64_t n_out) {
    const int64_t nb = (n_out + CKLS_I16_BLOCK - 1) / CKLS_I16_BLOCK; /* a thread: DXI_M rows of quants and scales */
    return nth * ((DXI_M * nb * (int64_t)(CKLS_I16_BLOCK * sizeof(int16_t) + sizeof(float)) + 63) / 64 * 64);
}

int ckls_matmul_dx_i16(ckls_pool *pool, const block_i16x8 *wt, int64_t n_out, int64_t n_in, const float *dy,
                       int64_t n_tok, float *dx, int accumulate, void *scratch, const volatile int32_t *cancel) {
    const ckls_isa_kernels *kr = ckls_active_kernels();
    if (!kr->gemm_i16x8 || n_in % 16) /* the kernels take column groups in pairs */
        return ckls_fail(CKLS_EINVAL, "dx_i16: no int16 kernels, or %lld columns (not a multiple of 16)", (long long)n_in);
    const int nth = ckls_pool_threads(pool);
    dxi_job j = {.quantize = kr->quantize_i16, .gemm = kr->gemm_i16x8, .wt = wt, .n_out = n_out, .n_in = n_in,
                 .n_tok = n_tok, .nb = (n_out + CKLS_I16_BLOCK - 1) / CKLS_I16_BLOCK, .dy = dy, .dx = dx,
                 .scratch = scratch, .accumulate = accumulate};
    /* two items a thread where that keeps them at 64 tokens or more, in multiples of the kernel's 4 */
    const int64_t per = (n_tok + 2 * nth - 1) / (2 * nth);
    j.m_item = per < 64 ? 64 : per > DXI_M ? DXI_M : (per + 3) / 4 * 4;
    ckls_queue_init(&j.q, cancel);
    if (n_out == 0) return dx_over_empty_k(dx, n_tok, n_in, accumulate);
    ckls_pool_run(n_tok > j.m_item ? pool : NULL, dxi_task, &j);
    return ckls_queue_stopped(&j.q);
}

/* ---- y = x.W^T through a frozen weight, in f32 (the training forward) ------------------------------------------ */
#define FW_KB 256 /* input columns per panel: one 256-block, or eight 32-blocks */
#define FW_NB 64  /* weight rows (outputs) per work item */

typedef struct {
    ckls_gemm_tile_fn tile;
    ckls_transpose_fn transpose;
    ckls_to_float_fn to_float;
    const char *w;
    int64_t row_bytes, blck, blck_bytes, n_out, n_in, n_tok;
    const float *x;
    float *y;
    ckls_queue q;
} fw_job;

static void fw_task(void *p, int ith, int nth) {
    fw_job *j = p;
    float panel[FW_KB * FW_NB] __attribute__((aligned(64))), rows[FW_NB * FW_KB] __attribute__((aligned(64)));
    const int64_t n_items = (j->n_out + FW_NB - 1) / FW_NB;
    for (int64_t it; (it = ckls_queue_take(&j->q, n_items, 1)) >= 0;) {
        const int64_t o0 = it * FW_NB, n = j->n_out - o0 < FW_NB ? j->n_out - o0 : FW_NB;
        for (int64_t k0 = 0; k0 < j->n_in; k0 += FW_KB) {
            const int64_t kk = j->n_in - k0 < FW_KB ? j->n_in - k0 : FW_KB; /* a block multiple */
            /* W's rows o0.. (columns k0..) dequantized, then laid out transposed: panel[k][o] */
            for (int64_t r = 0; r < n; r++)
                j->to_float(j->w + (o0 + r) * j->row_bytes + k0 / j->blck * j->blck_bytes, rows + r * kk, kk);
            j->transpose(rows, n, kk, kk, panel, n);
            j->tile(j->n_tok, n, kk, 1.0f, j->x + k0, j->n_in, 1, panel, n, k0 > 0, j->y + o0, j->n_out);
        }
    }
}

int ckls_matmul_f32(ckls_pool *pool, int type, const void *w, int64_t n_out, int64_t n_in, const float *x,
                    int64_t n_tok, float *y, const volatile int32_t *cancel) {
    const ckls_type_info *ti = ckls_type_get(type);
    fw_job j = {.tile = ckls_active_kernels()->gemm_tile, .transpose = ckls_active_kernels()->transpose, .to_float = ti->to_float, .w = w,
                .row_bytes = ckls_row_bytes(type, n_in), .blck = ti->blck, .blck_bytes = ti->size, .n_out = n_out,
                .n_in = n_in, .n_tok = n_tok, .x = x, .y = y};
    ckls_queue_init(&j.q, cancel);
    if (n_in == 0) {
        for (int64_t t = 0; t < n_tok; t++) memset(y + t * n_out, 0, sizeof(float) * (size_t)n_out);
        return 0;
    }
    ckls_pool_run(n_out > FW_NB ? pool : NULL, fw_task, &j);
    return ckls_queue_stopped(&j.q);
}

int ckls_matmul_backward(ckls_pool *pool, int type, const void *w, int64_t n_out, int64_t n_in, const float *dy,
                         int64_t n_tok, float *dx, int32_t accumulate) {
    const ckls_type_info *ti = ckls_type_get(type);
    if (!ti || !ckls_type_supported(type)) return ckls_fail(CKLS_EINVAL, "unsupported weight type %d", type);
    if (ti->blck > DX_NB_MAX) return ckls_fail(CKLS_EINVAL, "block size %lld too large", (long long)ti->blck);
    if (n_out < 0 || n_in < 0 || n_tok < 0) return ckls_fail(CKLS_EINVAL, "matmul_backward: negative size");
    if (ckls_row_bytes(type, n_in) < 0)
        return ckls_fail(CKLS_EINVAL, "row length %lld is not a multiple of the block size", (long long)n_in);
    if (n_in == 0 || n_tok == 0) return CKLS_OK;
    if (!dx || (n_out > 0 && (!w || !dy))) return ckls_fail(CKLS_EINVAL, "matmul_backward: NULL buffer");
    const int rc = ckls_matmul_dx(pool, type, w, n_out, n_in, dy, n_tok, dx, accumulate != 0, NULL);
    return rc < 0 ? rc : CKLS_OK;
}
