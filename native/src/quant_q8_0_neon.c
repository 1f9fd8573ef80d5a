/* quant_q8_0_neon.c — the Q8_0 activation quantizer with NEON: bit for bit ckls_quantize_q8_0_ref (quant_q8_0.c). */
#include <math.h>

#include "quant.h"

#if defined(__aarch64__) && defined(__ARM_NEON)
#include "simd_neon.h"

void ckls_quantize_q8_0_neon(const float *x, void *y, int64_t n) {
    block_q8_0 *b = y;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        float32x4_t v[8];
        float32x4_t m = vdupq_n_f32(0);
        for (int k = 0; k < 8; k++) {
            v[k] = vld1q_f32(x + 4 * k);
            m = vmaxnmq_f32(m, vabsq_f32(v[k])); /* maxNum skips NaN, like fmaxf */
        }
        const float amax = vmaxnmvq_f32(m);
        const float d = amax / 127.0f;
        const float id = d ? 1.0f / d : 0.0f;
        b[i].d = ckls_f32_to_f16(d);
        int32x4_t q[8];
        for (int k = 0; k < 8; k++) q[k] = vcvtaq_s32_f32(vmulq_n_f32(v[k], id)); /* ties away = roundf; NaN -> 0 */
        vst1q_s8(b[i].qs, narrow_i32x4x4(q[0], q[1], q[2], q[3]));
        vst1q_s8(b[i].qs + 16, narrow_i32x4x4(q[4], q[5], q[6], q[7]));
    }
}

#endif
