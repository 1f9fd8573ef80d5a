/* rope.h — RoPE's angles, the one rule that the forward (ops_forward.c), its backward (ops_backward.c) and the
 * training step's tables (train_step.c) share: all three must rotate by the same floats, bit for bit. */
#ifndef CKLS_ROPE_H
#define CKLS_ROPE_H

#include <math.h>
#include <stdint.h>

/* base^(-2/n_rot): the ratio of one angle to the previous */
static inline float ckls_rope_theta_scale(float freq_base, int64_t n_rot) {
    return powf(freq_base, -2.0f / (float)n_rot);
}

/* cos and sin of theta_i = pos * base^(-2i/n_rot) for i < half, computed by repeated multiplication in float
 * like ggml (not by powf per i: that rounds differently) */
static inline void ckls_rope_angles(int64_t pos, float theta_scale, int64_t half, float *cs, float *sn) {
    float theta = (float)pos;
    for (int64_t i = 0; i < half; i++) {
        cs[i] = cosf(theta);
        sn[i] = sinf(theta);
        theta *= theta_scale;
    }
}

#endif
