/* dot.c — the scalar reference of every row dot the runtime dispatches: one weight row (any format) with one
 * activation row in the format ckls_type_vec_dot_type() names. The SIMD versions beside it (dot_avx2.c,
 * dot_avx512.c, dot_neon.c) carry the same names with their ISA instead of _ref, and native/tests/test_kernels.c
 * compares each with its reference on random rows. */
#include "quant.h"

/* ---- float rows: accumulate in double, the SIMD versions are compared to them with a tolerance --------------- */
void ckls_vec_dot_f32_f32_ref(int64_t n, float *s, const void *w, const void *x) {
    const float *a = w, *b = x;
    double acc = 0;
    for (int64_t i = 0; i < n; i++) acc += (double)a[i] * b[i];
    *s = (float)acc;
}
void ckls_vec_dot_f16_f32_ref(int64_t n, float *s, const void *w, const void *x) {
    const ckls_f16 *a = w;
    const float *b = x;
    double acc = 0;
    for (int64_t i = 0; i < n; i++) acc += (double)ckls_f16_to_f32(a[i]) * b[i];
    *s = (float)acc;
}
void ckls_vec_dot_bf16_f32_ref(int64_t n, float *s, const void *w, const void *x) {
    const ckls_bf16 *a = w;
    const float *b = x;
    double acc = 0;
    for (int64_t i = 0; i < n; i++) acc += (double)ckls_bf16_to_f32(a[i]) * b[i];
    *s = (float)acc;
}

/* ---- Q8_0 x Q8_0 --------------------------------------------------------------------------------------------- */
void ckls_vec_dot_q8_0_q8_0_ref(int64_t n, float *s, const void *w, const void *x) {
    const block_q8_0 *a = w, *b = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        int32_t acc = 0;
        for (int j = 0; j < QK8_0; j++) acc += (int32_t)a[i].qs[j] * b[i].qs[j];
        sum += (float)acc * ckls_f16_to_f32(a[i].d) * ckls_f16_to_f32(b[i].d);
    }
    *s = sum;
}

/* ---- Q4_0 x Q8_0 --------------------------------------------------------------------------------------------- */
void ckls_vec_dot_q4_0_q8_0_ref(int64_t n, float *s, const void *w, const void *x) {
    const block_q4_0 *a = w;
    const block_q8_0 *b = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK4_0; i++) {
        int32_t acc = 0;
        for (int j = 0; j < QK4_0 / 2; j++) {
            acc += ((a[i].qs[j] & 0x0F) - 8) * b[i].qs[j];
            acc += ((a[i].qs[j] >> 4) - 8) * b[i].qs[j + QK4_0 / 2];
        }
        sum += (float)acc * (ckls_f16_to_f32(a[i].d) * ckls_f16_to_f32(b[i].d));
    }
    *s = sum;
}

/* ---- Q4_K x Q8_K --------------------------------------------------------------------------------------------- */
void ckls_vec_dot_q4_K_q8_K_ref(int64_t n, float *s, const void *w, const void *x) {
    const block_q4_K *a = w;
    const block_q8_K *b = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int32_t isum = 0, msum = 0;
        for (int j = 0; j < 8; j++) {
            int sc, m;
            ckls_q4k_scale_min(j, a[i].scales, &sc, &m);
            const uint8_t *q = a[i].qs + 32 * (j / 2);
            const int8_t *q8 = b[i].qs + 32 * j;
            const int shift = 4 * (j & 1);
            int32_t acc = 0;
            for (int l = 0; l < 32; l++) acc += ((q[l] >> shift) & 0x0F) * q8[l];
            isum += sc * acc;
            msum += m * (b[i].bsums[2 * j] + b[i].bsums[2 * j + 1]);
        }
        sum += b[i].d * ckls_f16_to_f32(a[i].d) * (float)isum - b[i].d * ckls_f16_to_f32(a[i].dmin) * (float)msum;
    }
    *s = sum;
}

/* ---- Q6_K x Q8_K --------------------------------------------------------------------------------------------- */
void ckls_vec_dot_q6_K_q8_K_ref(int64_t n, float *s, const void *w, const void *x) {
    const block_q6_K *a = w;
    const block_q8_K *b = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int32_t isum = 0;
        for (int g = 0; g < 16; g++) {
            int32_t acc = 0;
            for (int l = 0; l < 16; l++) acc += (ckls_q6k_level(&a[i], 16 * g + l) - 32) * b[i].qs[16 * g + l];
            isum += a[i].scales[g] * acc;
        }
        sum += ckls_f16_to_f32(a[i].d) * b[i].d * (float)isum;
    }
    *s = sum;
}
