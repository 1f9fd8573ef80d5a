/* quant_q8_k_neon.c — the Q8_K activation quantizer with NEON: bit for bit ckls_quantize_q8_K_ref (quant_q8_k.c). */
#include <math.h>

#include "quant.h"

#if defined(__aarch64__) && defined(__ARM_NEON)
#include "simd_neon.h"

void ckls_quantize_q8_K_neon(const float *x, void *y, int64_t n) {
    block_q8_K *b = y;
    const float32x4_t magic = vdupq_n_f32(12582912.0f);
    const int32x4_t mant = vdupq_n_s32(0x007fffff), bias = vdupq_n_s32(0x00400000);
    const int32x4_t hi = vdupq_n_s32(127), lo = vdupq_n_s32(-128);
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float32x4_t m = vdupq_n_f32(0);
        for (int k = 0; k < QK_K; k += 4) m = vmaxnmq_f32(m, vabsq_f32(vld1q_f32(x + k)));
        const float amax = vmaxnmvq_f32(m);
        if (!(amax > 0.0f)) {
            memset(&b[i], 0, sizeof b[i]);
            continue;
        }
        float max = 0.0f;
        for (int k = 0; k < QK_K; k++)
            if (fabsf(x[k]) == amax) { max = x[k]; break; }
        const float iscale = -127.0f / max;
        for (int k = 0; k < QK_K; k += 16) {
            int32x4_t q[4];
            for (int j = 0; j < 4; j++) {
                const float32x4_t t = vaddq_f32(vmulq_n_f32(vld1q_f32(x + k + 4 * j), iscale), magic);
                const int32x4_t v = vsubq_s32(vandq_s32(vreinterpretq_s32_f32(t), mant), bias);
                q[j] = vmaxq_s32(vminq_s32(v, hi), lo);
            }
            const int8x16_t q8 = narrow_i32x4x4(q[0], q[1], q[2], q[3]);
            vst1q_s8(b[i].qs + k, q8);
            b[i].bsums[k / 16] = vaddlvq_s8(q8);
        }
        b[i].d = 1.0f / iscale;
    }
}

#endif
