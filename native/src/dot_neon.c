/* dot_neon.c — AArch64 NEON dots for F32, F16, Q8_0, Q4_0, Q4_K, Q6_K (references: dot.c). Byte products use SDOT where the target has it
 * (__ARM_FEATURE_DOTPROD) and widening multiply + pairwise add otherwise; both give the same int32 sums. */
#include <math.h>

#include "quant.h"

#if defined(__aarch64__) && defined(__ARM_NEON)
#include "simd_neon.h"

/* acc + 4 partial int32 sums of a*b over 16 bytes (only the total across lanes is meaningful) */
static inline int32x4_t dot16(int32x4_t acc, int8x16_t a, int8x16_t b) {
#if defined(__ARM_FEATURE_DOTPROD)
    return vdotq_s32(acc, a, b);
#else
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_high_s8(a, b));
#endif
}

/* ---- float rows ------------------------------------------------------------------------------------------ */
void ckls_vec_dot_f32_f32_neon(int64_t n, float *s, const void *w, const void *x) {
    const float *a = w, *b = x;
    float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0), acc2 = vdupq_n_f32(0), acc3 = vdupq_n_f32(0);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
        acc1 = vfmaq_f32(acc1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
        acc2 = vfmaq_f32(acc2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
        acc3 = vfmaq_f32(acc3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
    }
    for (; i + 4 <= n; i += 4) acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
    float sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc0, acc1), vaddq_f32(acc2, acc3)));
    for (; i < n; i++) sum += a[i] * b[i];
    *s = sum;
}

static inline float32x4_t load_f16x4(const ckls_f16 *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }

void ckls_vec_dot_f16_f32_neon(int64_t n, float *s, const void *w, const void *x) {
    const ckls_f16 *a = w;
    const float *b = x;
    float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0), acc2 = vdupq_n_f32(0), acc3 = vdupq_n_f32(0);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = vfmaq_f32(acc0, load_f16x4(a + i), vld1q_f32(b + i));
        acc1 = vfmaq_f32(acc1, load_f16x4(a + i + 4), vld1q_f32(b + i + 4));
        acc2 = vfmaq_f32(acc2, load_f16x4(a + i + 8), vld1q_f32(b + i + 8));
        acc3 = vfmaq_f32(acc3, load_f16x4(a + i + 12), vld1q_f32(b + i + 12));
    }
    for (; i + 4 <= n; i += 4) acc0 = vfmaq_f32(acc0, load_f16x4(a + i), vld1q_f32(b + i));
    float sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc0, acc1), vaddq_f32(acc2, acc3)));
    for (; i < n; i++) sum += ckls_f16_to_f32(a[i]) * b[i];
    *s = sum;
}

/* ---- Q8_0 / Q4_0 x Q8_0 ---------------------------------------------------------------------------------- */
void ckls_vec_dot_q8_0_q8_0_neon(int64_t n, float *s, const void *w, const void *x) {
    const block_q8_0 *a = w, *b = x;
    float32x4_t acc = vdupq_n_f32(0);
    for (int64_t i = 0; i < n / QK8_0; i++) {
        int32x4_t p = dot16(vdupq_n_s32(0), vld1q_s8(a[i].qs), vld1q_s8(b[i].qs));
        p = dot16(p, vld1q_s8(a[i].qs + 16), vld1q_s8(b[i].qs + 16));
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(p), ckls_f16_to_f32(a[i].d) * ckls_f16_to_f32(b[i].d));
    }
    *s = vaddvq_f32(acc);
}

void ckls_vec_dot_q4_0_q8_0_neon(int64_t n, float *s, const void *w, const void *x) {
    const block_q4_0 *a = w;
    const block_q8_0 *b = x;
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    const int8x16_t eight = vdupq_n_s8(8);
    float32x4_t acc = vdupq_n_f32(0);
    for (int64_t i = 0; i < n / QK4_0; i++) {
        const uint8x16_t v = vld1q_u8(a[i].qs);
        const int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, m4)), eight);
        const int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), eight);
        int32x4_t p = dot16(vdupq_n_s32(0), lo, vld1q_s8(b[i].qs));
        p = dot16(p, hi, vld1q_s8(b[i].qs + 16));
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(p), ckls_f16_to_f32(a[i].d) * ckls_f16_to_f32(b[i].d));
    }
    *s = vaddvq_f32(acc);
}

/* ---- K-quants x Q8_K ------------------------------------------------------------------------------------- */
void ckls_vec_dot_q4_K_q8_K_neon(int64_t n, float *s, const void *w, const void *x) {
    const block_q4_K *a = w;
    const block_q8_K *b = x;
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        /* 12 packed bytes -> 8 scales, 8 mins (see quant_q4_k.c for the layout) */
        uint32_t u[3], t[4];
        memcpy(u, a[i].scales, 12);
        t[0] = u[0] & 0x3f3f3f3f;
        t[1] = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);
        t[2] = u[1] & 0x3f3f3f3f;
        t[3] = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4);
        uint8_t sm[16];
        memcpy(sm, t, 16);
        const int16x8_t mins = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(sm + 8)));
        const int16x8_t bs = vpaddq_s16(vld1q_s16(b[i].bsums), vld1q_s16(b[i].bsums + 8));
        const int32x4_t mp = vaddq_s32(vmull_s16(vget_low_s16(mins), vget_low_s16(bs)),
                                       vmull_high_s16(mins, bs));
        const int32_t msum = vaddvq_s32(mp);
        int32_t isum = 0;
        const uint8_t *q4 = a[i].qs;
        const int8_t *q8 = b[i].qs;
        for (int c = 0; c < 4; c++, q4 += 32, q8 += 64) {
            const uint8x16_t v0 = vld1q_u8(q4), v1 = vld1q_u8(q4 + 16);
            int32x4_t pl = dot16(vdupq_n_s32(0), vreinterpretq_s8_u8(vandq_u8(v0, m4)), vld1q_s8(q8));
            pl = dot16(pl, vreinterpretq_s8_u8(vandq_u8(v1, m4)), vld1q_s8(q8 + 16));
            int32x4_t ph = dot16(vdupq_n_s32(0), vreinterpretq_s8_u8(vshrq_n_u8(v0, 4)), vld1q_s8(q8 + 32));
            ph = dot16(ph, vreinterpretq_s8_u8(vshrq_n_u8(v1, 4)), vld1q_s8(q8 + 48));
            isum += vaddvq_s32(pl) * sm[2 * c] + vaddvq_s32(ph) * sm[2 * c + 1];
        }
        sum += b[i].d * ckls_f16_to_f32(a[i].d) * (float)isum - b[i].d * ckls_f16_to_f32(a[i].dmin) * (float)msum;
    }
    *s = sum;
}

void ckls_vec_dot_q6_K_q8_K_neon(int64_t n, float *s, const void *w, const void *x) {
    const block_q6_K *a = w;
    const block_q8_K *b = x;
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m3 = vdupq_n_u8(0x03);
    const int8x16_t off = vdupq_n_s8(32);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int32_t isum = 0;
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = a[i].ql + 64 * h, *qh = a[i].qh + 32 * h;
            const int8_t *q8 = b[i].qs + 128 * h;
            const int8_t *sc = a[i].scales + 8 * h;
            const uint8x16_t l0 = vld1q_u8(ql), l1 = vld1q_u8(ql + 16), l2 = vld1q_u8(ql + 32), l3 = vld1q_u8(ql + 48);
            const uint8x16_t h0 = vld1q_u8(qh), h1 = vld1q_u8(qh + 16);
            /* 8 runs of 16 weights, in element order: (low bits, high bits) */
            uint8x16_t q[8];
            q[0] = vorrq_u8(vandq_u8(l0, m4), vshlq_n_u8(vandq_u8(h0, m3), 4));
            q[1] = vorrq_u8(vandq_u8(l1, m4), vshlq_n_u8(vandq_u8(h1, m3), 4));
            q[2] = vorrq_u8(vandq_u8(l2, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(h0, 2), m3), 4));
            q[3] = vorrq_u8(vandq_u8(l3, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(h1, 2), m3), 4));
            q[4] = vorrq_u8(vshrq_n_u8(l0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(h0, 4), m3), 4));
            q[5] = vorrq_u8(vshrq_n_u8(l1, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(h1, 4), m3), 4));
            q[6] = vorrq_u8(vshrq_n_u8(l2, 4), vshlq_n_u8(vshrq_n_u8(h0, 6), 4));
            q[7] = vorrq_u8(vshrq_n_u8(l3, 4), vshlq_n_u8(vshrq_n_u8(h1, 6), 4));
            for (int k = 0; k < 8; k++) {
                const int8x16_t qs = vsubq_s8(vreinterpretq_s8_u8(q[k]), off);
                isum += sc[k] * vaddvq_s32(dot16(vdupq_n_s32(0), qs, vld1q_s8(q8 + 16 * k)));
            }
        }
        sum += ckls_f16_to_f32(a[i].d) * b[i].d * (float)isum;
    }
    *s = sum;
}

#endif
