/* types.c — the table of block formats and the public quantize / dequantize / kernel-test entry points. */
#include "quant.h"

static const ckls_type_info TYPES[CKLS_TYPE_MAX] = {
    [CKLS_TYPE_F32] = {"f32", 1, 4, CKLS_TYPE_F32, ckls_dequantize_f32, ckls_quantize_f32},
    [CKLS_TYPE_F16] = {"f16", 1, 2, CKLS_TYPE_F32, ckls_dequantize_f16, ckls_quantize_f16},
    [CKLS_TYPE_BF16] = {"bf16", 1, 2, CKLS_TYPE_F32, ckls_dequantize_bf16, ckls_quantize_bf16},
    [CKLS_TYPE_Q8_0] = {"q8_0", QK8_0, sizeof(block_q8_0), CKLS_TYPE_Q8_0, ckls_dequantize_q8_0, ckls_quantize_q8_0_ref},
    [CKLS_TYPE_Q4_0] = {"q4_0", QK4_0, sizeof(block_q4_0), CKLS_TYPE_Q8_0, ckls_dequantize_q4_0, ckls_quantize_q4_0},
    [CKLS_TYPE_Q4_K] = {"q4_K", QK_K, sizeof(block_q4_K), CKLS_TYPE_Q8_K, ckls_dequantize_q4_K, ckls_quantize_q4_K},
    [CKLS_TYPE_Q6_K] = {"q6_K", QK_K, sizeof(block_q6_K), CKLS_TYPE_Q8_K, ckls_dequantize_q6_K, ckls_quantize_q6_K},
    [CKLS_TYPE_Q8_K] = {"q8_K", QK_K, sizeof(block_q8_K), CKLS_TYPE_Q8_K, ckls_dequantize_q8_K, ckls_quantize_q8_K_ref},
};

const ckls_type_info *ckls_type_get(int type) {
    if (type < 0 || type >= CKLS_TYPE_MAX || TYPES[type].name == NULL) return NULL;
    return &TYPES[type];
}

int ckls_type_supported(int type) { return ckls_type_get(type) != NULL && type != CKLS_TYPE_Q8_K; }
int64_t ckls_type_block_size(int type) { const ckls_type_info *t = ckls_type_get(type); return t ? t->blck : 0; }
int64_t ckls_type_block_bytes(int type) { const ckls_type_info *t = ckls_type_get(type); return t ? t->size : 0; }
int ckls_type_vec_dot_type(int type) { const ckls_type_info *t = ckls_type_get(type); return t ? t->vec_dot_type : -1; }

int64_t ckls_row_bytes(int type, int64_t n) {
    const ckls_type_info *t = ckls_type_get(type);
    if (!t || n < 0 || n % t->blck != 0) return -1;
    return n / t->blck * t->size;
}

static int check_row(int type, int64_t n, const void *a, const void *b) {
    const ckls_type_info *t = ckls_type_get(type);
    if (!t) return ckls_fail(CKLS_EINVAL, "unsupported tensor type %d", type);
    if (n < 0 || n % t->blck) return ckls_fail(CKLS_EINVAL, "row of %lld is not a multiple of %s's block of %lld",
                                              (long long)n, t->name, (long long)t->blck);
    if (n > 0 && (!a || !b)) return ckls_fail(CKLS_EINVAL, "NULL buffer");
    return CKLS_OK;
}

int ckls_quantize_row(int type, const float *x, void *y, int64_t n) {
    int rc = check_row(type, n, x, y);
    if (rc) return rc;
    ckls_type_get(type)->from_float_ref(x, y, n);
    return CKLS_OK;
}

int ckls_dequantize_row(int type, const void *x, float *y, int64_t n) {
    int rc = check_row(type, n, x, y);
    if (rc) return rc;
    ckls_type_get(type)->to_float(x, y, n);
    return CKLS_OK;
}

int ckls_quantize_rows(int type, const float *x, void *y, int64_t n_rows, int64_t n_cols, const float *imatrix) {
    int rc = check_row(type, n_cols, x, y);
    if (rc) return rc;
    if (n_rows < 0) return ckls_fail(CKLS_EINVAL, "negative row count");
    const int64_t rb = ckls_row_bytes(type, n_cols);
    for (int64_t r = 0; r < n_rows; r++) {
        const float *xr = x + r * n_cols;
        void *yr = (char *)y + r * rb;
        if (imatrix && type == CKLS_TYPE_Q4_K) ckls_quantize_q4_K_imatrix(xr, yr, n_cols, imatrix);
        else if (imatrix && type == CKLS_TYPE_Q6_K) ckls_quantize_q6_K_imatrix(xr, yr, n_cols, imatrix);
        else ckls_type_get(type)->from_float_ref(xr, yr, n_cols);
    }
    return CKLS_OK;
}

int ckls_kernel_quantize_act(int isa, int type, const float *x, void *y, int64_t n) {
    const ckls_isa_kernels *k = ckls_isa_table(isa);
    if (!k) return ckls_fail(CKLS_EINVAL, "ISA %d is not available", isa);
    int rc = check_row(type, n, x, y);
    if (rc) return rc;
    if (!k->quantize_act[type]) return ckls_fail(CKLS_EINVAL, "no activation quantizer for type %d", type);
    k->quantize_act[type](x, y, n);
    return CKLS_OK;
}

int ckls_kernel_vec_dot(int isa, int type, int64_t n, const void *w, const void *xq, float *out) {
    const ckls_isa_kernels *k = ckls_isa_table(isa);
    if (!k) return ckls_fail(CKLS_EINVAL, "ISA %d is not available", isa);
    int rc = check_row(type, n, w, xq);
    if (rc) return rc;
    if (!out) return ckls_fail(CKLS_EINVAL, "NULL output");
    if (!k->vec_dot[type]) return ckls_fail(CKLS_EINVAL, "no dot kernel for type %d", type);
    k->vec_dot[type](n, out, w, xq);
    return CKLS_OK;
}
