/* matmul.h — weight × activation products shared by the model: quantize the activations once, then dot. */
#ifndef CKLS_MATMUL_H
#define CKLS_MATMUL_H

#include "internal.h"

/* Activations already quantized to ckls_type_vec_dot_type(type): n_tok rows of xq_row_bytes each. */
int ckls_matmul_pre(ckls_pool *pool, int type, const void *w, int64_t n_out, int64_t n_in, const void *xq,
                    int64_t xq_row_bytes, int64_t n_tok, float *y, int64_t y_stride, const volatile int32_t *cancel);

/* Quantizes n_tok rows of x (f32, n_in each) into xq with the active ISA's quantizer for `act_type`. */
void ckls_quantize_acts(ckls_pool *pool, int act_type, const float *x, void *xq, int64_t n_in, int64_t n_tok);

#endif
