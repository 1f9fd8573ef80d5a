/* quant_q4_0.c — Q4_0: blocks of 32 4-bit weights with one f16 scale; w = (q - 8) * d. Byte j holds element j
 * in its low nibble and element j + 16 in its high one. Dotted with Q8_0 activations. The quantizer is ggml's
 * reference rounding (quantize_row_q4_0_ref), so our files and gguf-py's agree byte for byte. */
#include <math.h>

#include "quant.h"

void ckls_dequantize_q4_0(const void *x, float *y, int64_t n) {
    const block_q4_0 *b = x;
    for (int64_t i = 0; i < n / QK4_0; i++) {
        const float d = ckls_f16_to_f32(b[i].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            y[i * QK4_0 + j] = (float)((b[i].qs[j] & 0x0F) - 8) * d;
            y[i * QK4_0 + j + QK4_0 / 2] = (float)((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

/* trunc(v) clamped to 0..15; same as ggml's MIN(15, (int8_t)v) for every v it can see, and defined for NaN. */
static inline int q4_level(float v) { return v >= 15.0f ? 15 : v > 0.0f ? (int)v : 0; }

void ckls_quantize_q4_0(const float *x, void *y, int64_t n) {
    block_q4_0 *b = y;
    for (int64_t i = 0; i < n / QK4_0; i++) {
        const float *xb = x + i * QK4_0;
        /* The signed value of largest magnitude maps to level 0 (-8): one more level on that side. */
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK4_0; j++)
            if (amax < fabsf(xb[j])) { amax = fabsf(xb[j]); max = xb[j]; }
        const float d = max / -8.0f;
        const float id = d ? 1.0f / d : 0.0f;
        b[i].d = ckls_f32_to_f16(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            const int lo = q4_level(xb[j] * id + 8.5f);
            const int hi = q4_level(xb[j + QK4_0 / 2] * id + 8.5f);
            b[i].qs[j] = (uint8_t)(lo | (hi << 4));
        }
    }
}
