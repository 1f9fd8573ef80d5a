/* matmul.h — weight × activation products shared by the model: quantize the activations once, then dot. */
#ifndef CKLS_MATMUL_H
#define CKLS_MATMUL_H

#include "internal.h"

/* Activations already quantized to ckls_type_vec_dot_type(type): n_tok rows of xq_row_bytes each. */
int ckls_matmul_pre(ckls_pool *pool, int type, const void *w, int64_t n_out, int64_t n_in, const void *xq,
                    int64_t xq_row_bytes, int64_t n_tok, float *y, int64_t y_stride, const volatile int32_t *cancel);

/* As ckls_matmul_pre, with the matrix's full 8-row groups also in the interleaved layout at `packed`
 * (ckls_repack_groups; NULL = none): they go through the active ISA's gemm_x8 kernel when it has one for the
 * type, the tail rows through the row dots. Without a kernel this is ckls_matmul_pre. */
int ckls_matmul_packed(ckls_pool *pool, int type, const void *w, const void *packed, int64_t n_out, int64_t n_in,
                       const void *xq, int64_t xq_row_bytes, int64_t n_tok, float *y, int64_t y_stride,
                       const volatile int32_t *cancel);

/* The fine-tuner's Q8_0 products against activations of 7-bit quants (ckls_quantize_acts_a7): as
 * ckls_matmul_packed, the groups through the active ISA's gemm_x8_a7 where it has one (the rest, and every other
 * type, as ckls_matmul_packed does them: 7-bit quants are Q8_0 blocks). Computes the activations' block terms
 * itself; the trainer has ckls_quantize_acts_a7 make them and calls ckls_matmul_packed_ep. */
int ckls_matmul_packed_a7(ckls_pool *pool, int type, const void *w, const void *packed, int64_t n_out, int64_t n_in,
                          const void *xq, int64_t xq_row_bytes, int64_t n_tok, float *y, int64_t y_stride,
                          const volatile int32_t *cancel);

/* What a product does to each block of its outputs as soon as the block is final, while it is in cache (a separate
 * pass reads and writes all of y once more, which for a LoRA adapter's add cost several times its multiply-adds):
 * y += scale * u.B^T where u is set (an adapter's second half: u n_tok rows of r floats, bt = B^T, r rows of
 * n_out), then acc += y where acc is set (acc laid out as y: a product added into a sum). Each output gets the same
 * arithmetic as ckls_gemm's tile and a plain add give it. */
typedef struct {
    const float *u, *bt;
    int64_t r;
    float scale;
    float *acc;
} ckls_epilogue;

/* 7-bit activations' block terms for gemm_x8_a7 (ckls_quantize_acts_a7 makes them): n_in / 32 a token */
typedef struct {
    const int32_t *off;
    const float *xd;
} ckls_a7_terms;

/* ckls_matmul_packed (a7 NULL) or ckls_matmul_packed_a7 on activations whose terms are given, then ep (NULL: none) */
int ckls_matmul_packed_ep(ckls_pool *pool, int type, const void *w, const void *packed, int64_t n_out, int64_t n_in,
                          const void *xq, int64_t xq_row_bytes, int64_t n_tok, float *y, int64_t y_stride,
                          const volatile int32_t *cancel, const ckls_a7_terms *a7, const ckls_epilogue *ep);

/* Repacks a matrix's full 8-row groups on the pool into a new ckls_aligned_alloc buffer (*bytes set); NULL with
 * *bytes = 0 when the active ISA has no interleaved kernel for the type or there is no full group, NULL with
 * *bytes < 0 when out of memory. */
void *ckls_repack_matrix(ckls_pool *pool, int type, const void *w, int64_t n_out, int64_t n_in, int64_t *bytes);

/* Quantizes n_tok rows of x (f32, n_in each) into xq with the active ISA's quantizer for `act_type`. */
void ckls_quantize_acts(ckls_pool *pool, int act_type, const float *x, void *xq, int64_t n_in, int64_t n_tok);
/* ... to Q8_0 blocks of 7-bit quants (|q| <= 64), the active ISA's quantize_a7; where off is set, also each row's
 * block terms (ckls_q8_0_a7_terms into off and xd, n_in / 32 a row) while the row is in cache */
void ckls_quantize_acts_a7(ckls_pool *pool, const float *x, void *xq, int64_t n_in, int64_t n_tok, int32_t *off,
                           float *xd);

#endif
