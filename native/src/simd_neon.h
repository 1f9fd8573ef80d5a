/* simd_neon.h — small NEON helpers the *_neon.c kernel files share (include only inside their #if guard). */
#ifndef CKLS_SIMD_NEON_H
#define CKLS_SIMD_NEON_H

#include <arm_neon.h>

/* 16 int32 (already within int8 range or saturating) -> 16 int8 */
static inline int8x16_t narrow_i32x4x4(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
    const int16x8_t ab = vcombine_s16(vqmovn_s32(a), vqmovn_s32(b));
    const int16x8_t cd = vcombine_s16(vqmovn_s32(c), vqmovn_s32(d));
    return vcombine_s8(vqmovn_s16(ab), vqmovn_s16(cd));
}

#endif
