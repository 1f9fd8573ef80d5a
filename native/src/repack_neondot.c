/* repack_neondot.c — AArch64 SDOT kernels over the interleaved 8-row layouts (block_q8_0x8, block_q4_0x8,
 * block_q4_Kx8; repack.c): the gemm_x8 field of the NEONDOT table, which dispatch.c fills only where the CPU
 * reports the dot-product extension (Linux: HWCAP_ASIMDDP; macOS: hw.optional.arm.FEAT_DotProd).
 *
 * The layout is the x86 one: 32 bytes hold 4 quant bytes of each of 8 rows, so one 16-byte register holds rows
 * 0..3 and the next rows 4..7, each row's 4 bytes in its own 32-bit lane. SDOT by element
 * (vdotq_laneq_s32(acc, w, y, L)) adds, in every lane, the 4 weight bytes times the token's 4 activation bytes
 * held in lane L of y: each row's products go straight into its own int32 lane, no horizontal adds, no
 * broadcasts. SDOT is signed x signed, so unlike VNNI's vpdpbusd no offset is needed for Q8_0; Q4_0's nibbles
 * (0..15) go in as they are and the block sum starts at -8 * sum(y), the caller's aux, as in the reference. Q4_K's
 * nibbles likewise; each 32-element sub-block gets its own int32 sum, times the row's 6-bit scale, and the mins
 * term is the 16-bit bsums pairs times the unpacked mins, widened to int32.
 *
 * Every integer is the exact one ckls_gemm_*x8_ref forms, and the float work per (row, token) is the reference's:
 * the f16 scales are converted exactly, dw * dy is one float multiply, then one fused multiply-add per block in
 * block order from 0 (two for Q4_K: scales, then mins with FMLS, which is fma(-summ, dmin * dy, acc)). So each lane
 * equals the scalar reference bit for bit, for any nt, and a token gets the same logits in a prompt as alone.
 * Q6_K (repacked on x86 only with AVX-512 VNNI) has no kernel here and stays on the row dots, unrepacked.
 *
 * Speed on real ARM hardware (Apple silicon, Graviton, ...) is UNMEASURED: these kernels were only checked for
 * correctness under qemu-aarch64. No software prefetch (the groups are read sequentially); two accumulation chains
 * per row half when nt <= 2 so SDOT's latency, not its rate, is less likely to bound one token.
 * native/tools/bench_gemm.c measures them on a real machine (ISA 5 = CKLS_ISA_NEONDOT). */
#include "quant.h"

#if defined(__aarch64__) && defined(__ARM_FEATURE_DOTPROD)
#include <arm_neon.h>

#define INLINE static inline __attribute__((always_inline))

/* 8 half floats -> two float32x4 (exact) */
INLINE void load_f16x8(const ckls_f16 *p, float32x4_t *lo, float32x4_t *hi) {
    const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(p));
    *lo = vcvt_f32_f16(vget_low_f16(h));
    *hi = vcvt_high_f32_f16(h);
}

INLINE float f16_to_f32(ckls_f16 h) {
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

/* ---- Q8_0 --------------------------------------------------------------------------------------------------- */
/* Per block, token t: s0[t] (rows 0..3) and s1[t] (rows 4..7) collect the 8 four-byte groups m; group m of the
 * token is lane m % 4 of y[m / 4]. With nt <= 2 the odd groups go to a second pair of chains (c0, c1). */
INLINE void gemm_q8_0x8(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs, const int nt) {
    const block_q8_0x8 *a = w;
    const int64_t nb = n / QK8_0;
    const int split = nt <= 2;
    float32x4_t acc0[4], acc1[4];
    const block_q8_0 *b[4];
    for (int t = 0; t < nt; t++) {
        b[t] = (const block_q8_0 *)((const char *)xq + t * xs);
        acc0[t] = acc1[t] = vdupq_n_f32(0.0f);
    }
    for (int64_t i = 0; i < nb; i++) {
        int32x4_t s0[4], s1[4], c0[4], c1[4];
        int8x16_t y0[4], y1[4];
        for (int t = 0; t < nt; t++) {
            y0[t] = vld1q_s8(b[t][i].qs);
            y1[t] = vld1q_s8(b[t][i].qs + 16);
            s0[t] = s1[t] = c0[t] = c1[t] = vdupq_n_s32(0);
        }
#define Q8_STEP(m, Y, L)                                                                                           \
    do {                                                                                                           \
        const int8x16_t w0 = vld1q_s8(a[i].qs + 32 * (m)), w1 = vld1q_s8(a[i].qs + 32 * (m) + 16);                \
        for (int t = 0; t < nt; t++) {                                                                             \
            if (split && ((m) & 1)) {                                                                              \
                c0[t] = vdotq_laneq_s32(c0[t], w0, Y[t], L);                                                       \
                c1[t] = vdotq_laneq_s32(c1[t], w1, Y[t], L);                                                       \
            } else {                                                                                               \
                s0[t] = vdotq_laneq_s32(s0[t], w0, Y[t], L);                                                       \
                s1[t] = vdotq_laneq_s32(s1[t], w1, Y[t], L);                                                       \
            }                                                                                                      \
        }                                                                                                          \
    } while (0)
        Q8_STEP(0, y0, 0);
        Q8_STEP(1, y0, 1);
        Q8_STEP(2, y0, 2);
        Q8_STEP(3, y0, 3);
        Q8_STEP(4, y1, 0);
        Q8_STEP(5, y1, 1);
        Q8_STEP(6, y1, 2);
        Q8_STEP(7, y1, 3);
#undef Q8_STEP
        float32x4_t dw0, dw1;
        load_f16x8(a[i].d, &dw0, &dw1);
        for (int t = 0; t < nt; t++) {
            if (split) {
                s0[t] = vaddq_s32(s0[t], c0[t]);
                s1[t] = vaddq_s32(s1[t], c1[t]);
            }
            const float dy = f16_to_f32(b[t][i].d);
            acc0[t] = vfmaq_f32(acc0[t], vcvtq_f32_s32(s0[t]), vmulq_n_f32(dw0, dy));
            acc1[t] = vfmaq_f32(acc1[t], vcvtq_f32_s32(s1[t]), vmulq_n_f32(dw1, dy));
        }
    }
    for (int t = 0; t < nt; t++) {
        vst1q_f32(s + t * ss, acc0[t]);
        vst1q_f32(s + t * ss + 4, acc1[t]);
    }
}

/* ---- Q4_0 --------------------------------------------------------------------------------------------------- */
/* qs[32 m + 4 r + b] (m < 4): low nibbles are elements 4m.., high nibbles 16 + 4m..: lane m of the token's
 * y[0..15] and y[16..31]. The sums start at -8 * aux (the reference's sum -= 8 * aux, same integer). With
 * nt <= 2 the high nibbles go to a second pair of chains. */
INLINE void gemm_q4_0x8(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                        const int16_t *aux, const int nt) {
    const block_q4_0x8 *a = w;
    const int64_t nb = n / QK4_0;
    const int split = nt <= 2;
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    float32x4_t acc0[4], acc1[4];
    const block_q8_0 *b[4];
    for (int t = 0; t < nt; t++) {
        b[t] = (const block_q8_0 *)((const char *)xq + t * xs);
        acc0[t] = acc1[t] = vdupq_n_f32(0.0f);
    }
    for (int64_t i = 0; i < nb; i++) {
        int32x4_t s0[4], s1[4], c0[4], c1[4];
        int8x16_t ylo[4], yhi[4];
        for (int t = 0; t < nt; t++) {
            ylo[t] = vld1q_s8(b[t][i].qs);
            yhi[t] = vld1q_s8(b[t][i].qs + 16);
            s0[t] = s1[t] = vdupq_n_s32(-8 * aux[t * nb + i]);
            c0[t] = c1[t] = vdupq_n_s32(0);
        }
#define Q4_0_STEP(m)                                                                                               \
    do {                                                                                                           \
        const uint8x16_t p0 = vld1q_u8(a[i].qs + 32 * (m)), p1 = vld1q_u8(a[i].qs + 32 * (m) + 16);               \
        const int8x16_t l0 = vreinterpretq_s8_u8(vandq_u8(p0, m4)), l1 = vreinterpretq_s8_u8(vandq_u8(p1, m4));   \
        const int8x16_t h0 = vreinterpretq_s8_u8(vshrq_n_u8(p0, 4)), h1 = vreinterpretq_s8_u8(vshrq_n_u8(p1, 4));  \
        for (int t = 0; t < nt; t++) {                                                                             \
            s0[t] = vdotq_laneq_s32(s0[t], l0, ylo[t], m);                                                         \
            s1[t] = vdotq_laneq_s32(s1[t], l1, ylo[t], m);                                                         \
            if (split) {                                                                                           \
                c0[t] = vdotq_laneq_s32(c0[t], h0, yhi[t], m);                                                     \
                c1[t] = vdotq_laneq_s32(c1[t], h1, yhi[t], m);                                                     \
            } else {                                                                                               \
                s0[t] = vdotq_laneq_s32(s0[t], h0, yhi[t], m);                                                     \
                s1[t] = vdotq_laneq_s32(s1[t], h1, yhi[t], m);                                                     \
            }                                                                                                      \
        }                                                                                                          \
    } while (0)
        Q4_0_STEP(0);
        Q4_0_STEP(1);
        Q4_0_STEP(2);
        Q4_0_STEP(3);
#undef Q4_0_STEP
        float32x4_t dw0, dw1;
        load_f16x8(a[i].d, &dw0, &dw1);
        for (int t = 0; t < nt; t++) {
            if (split) {
                s0[t] = vaddq_s32(s0[t], c0[t]);
                s1[t] = vaddq_s32(s1[t], c1[t]);
            }
            const float dy = f16_to_f32(b[t][i].d);
            acc0[t] = vfmaq_f32(acc0[t], vcvtq_f32_s32(s0[t]), vmulq_n_f32(dw0, dy));
            acc1[t] = vfmaq_f32(acc1[t], vcvtq_f32_s32(s1[t]), vmulq_n_f32(dw1, dy));
        }
    }
    for (int t = 0; t < nt; t++) {
        vst1q_f32(s + t * ss, acc0[t]);
        vst1q_f32(s + t * ss + 4, acc1[t]);
    }
}

/* ---- Q4_K --------------------------------------------------------------------------------------------------- */
/* the 8 row bytes at p (0..63) as two int32x4, rows 0..3 and 4..7 */
INLINE void bytes_x8(const uint8_t *p, int32x4_t *lo, int32x4_t *hi) {
    const uint16x8_t v = vmovl_u8(vld1_u8(p));
    *lo = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(v)));
    *hi = vreinterpretq_s32_u32(vmovl_high_u16(v));
}

/* Chunk c (sub-blocks 2c and 2c+1, elements 64c..64c+63) is 8 groups m of 32 bytes: qs[32 (8c + m) + 4r + k]
 * = row r's qs[32c + 4m + k], whose low nibble is element 64c + 4m + k and high nibble 64c + 32 + 4m + k. So
 * group m takes lane m % 4 of the token's y[64c + 16 (m / 4) ..] (low) and y[64c + 32 + 16 (m / 4) ..] (high).
 * pl / ph: the int32 sums of sub-blocks 2c / 2c+1 for rows 0..3 ([0]) and 4..7 ([1]), then times the scales. */
INLINE void gemm_q4_Kx8(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs, const int nt) {
    const block_q4_Kx8 *a = w;
    const int64_t nb = n / QK_K;
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    float32x4_t acc0[4], acc1[4];
    const block_q8_K *b[4];
    for (int t = 0; t < nt; t++) {
        b[t] = (const block_q8_K *)((const char *)xq + t * xs);
        acc0[t] = acc1[t] = vdupq_n_f32(0.0f);
    }
    for (int64_t i = 0; i < nb; i++) {
        int32x4_t sumi0[4], sumi1[4];
        for (int t = 0; t < nt; t++) sumi0[t] = sumi1[t] = vdupq_n_s32(0);
        for (int c = 0; c < 4; c++) {
            int32x4_t pl0[4], pl1[4], ph0[4], ph1[4];
            for (int t = 0; t < nt; t++) pl0[t] = pl1[t] = ph0[t] = ph1[t] = vdupq_n_s32(0);
            const uint8_t *q = a[i].qs + 256 * c;
            for (int half = 0; half < 2; half++) {
                int8x16_t yl[4], yh[4];
                for (int t = 0; t < nt; t++) {
                    yl[t] = vld1q_s8(b[t][i].qs + 64 * c + 16 * half);
                    yh[t] = vld1q_s8(b[t][i].qs + 64 * c + 32 + 16 * half);
                }
#define Q4_K_STEP(L)                                                                                               \
    do {                                                                                                           \
        const uint8_t *g = q + 32 * (4 * half + (L));                                                              \
        const uint8x16_t p0 = vld1q_u8(g), p1 = vld1q_u8(g + 16);                                                  \
        const int8x16_t l0 = vreinterpretq_s8_u8(vandq_u8(p0, m4)), l1 = vreinterpretq_s8_u8(vandq_u8(p1, m4));   \
        const int8x16_t h0 = vreinterpretq_s8_u8(vshrq_n_u8(p0, 4)), h1 = vreinterpretq_s8_u8(vshrq_n_u8(p1, 4));  \
        for (int t = 0; t < nt; t++) {                                                                             \
            pl0[t] = vdotq_laneq_s32(pl0[t], l0, yl[t], L);                                                        \
            pl1[t] = vdotq_laneq_s32(pl1[t], l1, yl[t], L);                                                        \
            ph0[t] = vdotq_laneq_s32(ph0[t], h0, yh[t], L);                                                        \
            ph1[t] = vdotq_laneq_s32(ph1[t], h1, yh[t], L);                                                        \
        }                                                                                                          \
    } while (0)
                Q4_K_STEP(0);
                Q4_K_STEP(1);
                Q4_K_STEP(2);
                Q4_K_STEP(3);
#undef Q4_K_STEP
            }
            int32x4_t sl0, sl1, sh0, sh1;
            bytes_x8(a[i].scales[2 * c], &sl0, &sl1);
            bytes_x8(a[i].scales[2 * c + 1], &sh0, &sh1);
            for (int t = 0; t < nt; t++) {
                sumi0[t] = vmlaq_s32(vmlaq_s32(sumi0[t], pl0[t], sl0), ph0[t], sh0);
                sumi1[t] = vmlaq_s32(vmlaq_s32(sumi1[t], pl1[t], sl1), ph1[t], sh1);
            }
        }
        /* mins: mins[p] holds [min_r(2p), min_r(2p+1)] for r = 0..7, as int16 pairs; the token's 32-element sums
         * B_j = bsums[2j] + bsums[2j+1] (|B_j| <= 4096), pair p = (B_2p, B_2p+1) in every 32-bit lane */
        int16x8_t mlo[4], mhi[4];
        for (int p = 0; p < 4; p++) {
            const uint8x16_t v = vld1q_u8(a[i].mins[p][0]);
            mlo[p] = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(v)));
            mhi[p] = vreinterpretq_s16_u16(vmovl_high_u8(v));
        }
        float32x4_t dw0, dw1, dm0, dm1;
        load_f16x8(a[i].d, &dw0, &dw1);
        load_f16x8(a[i].dmin, &dm0, &dm1);
        for (int t = 0; t < nt; t++) {
            const int32x4_t bp = vreinterpretq_s32_s16(vpaddq_s16(vld1q_s16(b[t][i].bsums), vld1q_s16(b[t][i].bsums + 8)));
            /* per row r: [min_r(2p) B_2p, min_r(2p+1) B_2p+1] pairs, rows 0,1 | 2,3 | 4,5 | 6,7, summed over p */
            int32x4_t m01 = vdupq_n_s32(0), m23 = m01, m45 = m01, m67 = m01;
#define MINS_STEP(p)                                                                                               \
    do {                                                                                                           \
        const int16x8_t bb = vreinterpretq_s16_s32(vdupq_laneq_s32(bp, p));                                        \
        m01 = vmlal_s16(m01, vget_low_s16(mlo[p]), vget_low_s16(bb));                                              \
        m23 = vmlal_high_s16(m23, mlo[p], bb);                                                                     \
        m45 = vmlal_s16(m45, vget_low_s16(mhi[p]), vget_low_s16(bb));                                              \
        m67 = vmlal_high_s16(m67, mhi[p], bb);                                                                     \
    } while (0)
            MINS_STEP(0);
            MINS_STEP(1);
            MINS_STEP(2);
            MINS_STEP(3);
#undef MINS_STEP
            const int32x4_t summ0 = vpaddq_s32(m01, m23), summ1 = vpaddq_s32(m45, m67);
            const float dy = b[t][i].d;
            acc0[t] = vfmaq_f32(acc0[t], vcvtq_f32_s32(sumi0[t]), vmulq_n_f32(dw0, dy));
            acc1[t] = vfmaq_f32(acc1[t], vcvtq_f32_s32(sumi1[t]), vmulq_n_f32(dw1, dy));
            acc0[t] = vfmsq_f32(acc0[t], vcvtq_f32_s32(summ0), vmulq_n_f32(dm0, dy));
            acc1[t] = vfmsq_f32(acc1[t], vcvtq_f32_s32(summ1), vmulq_n_f32(dm1, dy));
        }
    }
    for (int t = 0; t < nt; t++) {
        vst1q_f32(s + t * ss, acc0[t]);
        vst1q_f32(s + t * ss + 4, acc1[t]);
    }
}

/* one specialisation per token count, so the token loops unroll and the accumulators stay in registers */
void ckls_gemm_q8_0x8_neondot(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                              const int16_t *aux, int nt) {
    (void)aux;
    switch (nt) {
    case 4: gemm_q8_0x8(n, s, ss, w, xq, xs, 4); break;
    case 3: gemm_q8_0x8(n, s, ss, w, xq, xs, 3); break;
    case 2: gemm_q8_0x8(n, s, ss, w, xq, xs, 2); break;
    default: gemm_q8_0x8(n, s, ss, w, xq, xs, 1); break;
    }
}

void ckls_gemm_q4_0x8_neondot(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                              const int16_t *aux, int nt) {
    switch (nt) {
    case 4: gemm_q4_0x8(n, s, ss, w, xq, xs, aux, 4); break;
    case 3: gemm_q4_0x8(n, s, ss, w, xq, xs, aux, 3); break;
    case 2: gemm_q4_0x8(n, s, ss, w, xq, xs, aux, 2); break;
    default: gemm_q4_0x8(n, s, ss, w, xq, xs, aux, 1); break;
    }
}

void ckls_gemm_q4_Kx8_neondot(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                              const int16_t *aux, int nt) {
    (void)aux;
    switch (nt) {
    case 4: gemm_q4_Kx8(n, s, ss, w, xq, xs, 4); break;
    case 3: gemm_q4_Kx8(n, s, ss, w, xq, xs, 3); break;
    case 2: gemm_q4_Kx8(n, s, ss, w, xq, xs, 2); break;
    default: gemm_q4_Kx8(n, s, ss, w, xq, xs, 1); break;
    }
}

#endif
