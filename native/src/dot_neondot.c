/* dot_neondot.c — row kernels of the NEONDOT table (AArch64 with the dot-product extension; dispatch.c uses them
 * only where the CPU reports it): Q8_0's 4-row dot.
 *
 * It exists for one invariant: a Q8_0 matrix gives the same bits repacked (gemm_x8, repack_neondot.c) or not
 * (matmul's row path). Per row it does what ckls_gemm_q8_0x8_ref and the AVX2 4-row kernel do: the block's exact
 * int32 sum, then acc = fma(sum, dw * dy, acc) in block order from 0. matmul runs it on every full block of 4 rows,
 * the repacked path on the tail rows past the last full group, so both paths meet the same arithmetic per row (the
 * one-row NEON dot keeps 4 float lanes and adds them at the end: within rounding, not bit for bit).
 * Speed on real ARM hardware is unmeasured here: it was checked under qemu for correctness only. */
#include "quant.h"

#if defined(__aarch64__) && defined(__ARM_FEATURE_DOTPROD)
#include <arm_neon.h>

#define ROW(p, r, stride) ((const block_q8_0 *)((const char *)(p) + (r) * (stride)))

void ckls_vec_dot_q8_0_q8_0_4r_neondot(int64_t n, float *s, const void *w, int64_t ws, const void *x) {
    const block_q8_0 *b = x;
    const block_q8_0 *a0 = ROW(w, 0, ws), *a1 = ROW(w, 1, ws), *a2 = ROW(w, 2, ws), *a3 = ROW(w, 3, ws);
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (int64_t i = 0; i < n / QK8_0; i++) {
        const int8x16_t y0 = vld1q_s8(b[i].qs), y1 = vld1q_s8(b[i].qs + 16);
        const int32x4_t p0 = vdotq_s32(vdotq_s32(vdupq_n_s32(0), vld1q_s8(a0[i].qs), y0), vld1q_s8(a0[i].qs + 16), y1);
        const int32x4_t p1 = vdotq_s32(vdotq_s32(vdupq_n_s32(0), vld1q_s8(a1[i].qs), y0), vld1q_s8(a1[i].qs + 16), y1);
        const int32x4_t p2 = vdotq_s32(vdotq_s32(vdupq_n_s32(0), vld1q_s8(a2[i].qs), y0), vld1q_s8(a2[i].qs + 16), y1);
        const int32x4_t p3 = vdotq_s32(vdotq_s32(vdupq_n_s32(0), vld1q_s8(a3[i].qs), y0), vld1q_s8(a3[i].qs + 16), y1);
        /* [sum r0, r1, r2, r3] */
        const int32x4_t sum = vpaddq_s32(vpaddq_s32(p0, p1), vpaddq_s32(p2, p3));
        const uint16_t d4[4] = {a0[i].d, a1[i].d, a2[i].d, a3[i].d};
        const float32x4_t dw = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(d4)));
        const float dy = vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(b[i].d))), 0);
        acc = vfmaq_f32(acc, vcvtq_f32_s32(sum), vmulq_n_f32(dw, dy));
    }
    vst1q_f32(s, acc);
}

#endif
