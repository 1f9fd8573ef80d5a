/* quant_q8_0.c — Q8_0: blocks of 32 int8 with one f16 scale; w = q * d. Also the activation format that
 * Q8_0 and Q4_0 weights are dotted with. Matches ggml's quantize_row_q8_0_ref. */
#include <math.h>

#include "quant.h"

void ckls_dequantize_q8_0(const void *x, float *y, int64_t n) {
    const block_q8_0 *b = x;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        const float d = ckls_f16_to_f32(b[i].d);
        for (int j = 0; j < QK8_0; j++) y[i * QK8_0 + j] = b[i].qs[j] * d;
    }
}

void ckls_quantize_q8_0_ref(const float *x, void *y, int64_t n) {
    block_q8_0 *b = y;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        const float *xb = x + i * QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; j++) amax = fmaxf(amax, fabsf(xb[j]));
        const float d = amax / 127.0f;
        const float id = d ? 1.0f / d : 0.0f;
        b[i].d = ckls_f32_to_f16(d);
        for (int j = 0; j < QK8_0; j++) {
            const float v = roundf(xb[j] * id); /* NaN (from Inf/NaN input) -> 0 instead of an undefined cast */
            b[i].qs[j] = (int8_t)(v == v ? (v > 127.0f ? 127.0f : v < -128.0f ? -128.0f : v) : 0.0f);
        }
    }
}
