/* dispatch.c — CPU detection and the per-ISA kernel tables (scalar fills every gap). */
#include <pthread.h>

#include "quant.h"

const ckls_isa_kernels ckls_kernels_scalar = {
    .quantize_act = {
        [CKLS_TYPE_F32] = ckls_quantize_f32,
        [CKLS_TYPE_Q8_0] = ckls_quantize_q8_0_ref,
        [CKLS_TYPE_Q8_K] = ckls_quantize_q8_K_ref,
    },
    .vec_dot = {
        [CKLS_TYPE_F32] = ckls_vec_dot_f32_f32_ref,
        [CKLS_TYPE_F16] = ckls_vec_dot_f16_f32_ref,
        [CKLS_TYPE_BF16] = ckls_vec_dot_bf16_f32_ref,
        [CKLS_TYPE_Q8_0] = ckls_vec_dot_q8_0_q8_0_ref,
        [CKLS_TYPE_Q4_0] = ckls_vec_dot_q4_0_q8_0_ref,
        [CKLS_TYPE_Q4_K] = ckls_vec_dot_q4_K_q8_K_ref,
        [CKLS_TYPE_Q6_K] = ckls_vec_dot_q6_K_q8_K_ref,
    },
    .attn_group = ckls_attn_group_ref,
};

static ckls_isa_kernels resolved[CKLS_ISA_COUNT];
static int have[CKLS_ISA_COUNT];
static int active = CKLS_ISA_SCALAR;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int cpu_has(int isa) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (isa == CKLS_ISA_AVX2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    if (isa == CKLS_ISA_AVX512)
        return cpu_has(CKLS_ISA_AVX2) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    return 0;
#elif defined(__aarch64__)
    return isa == CKLS_ISA_NEON;
#else
    return 0;
#endif
}

static void init(void) {
    const ckls_isa_kernels *own[CKLS_ISA_COUNT] = {
        &ckls_kernels_scalar, ckls_kernels_avx2(), ckls_kernels_avx512(), ckls_kernels_neon()};
    for (int isa = 0; isa < CKLS_ISA_COUNT; isa++) {
        have[isa] = own[isa] != NULL && (isa == CKLS_ISA_SCALAR || cpu_has(isa));
        if (!have[isa]) continue;
        /* Start from the scalar table, overlay the ISA's own kernels (AVX-512 also inherits AVX2's). */
        resolved[isa] = ckls_kernels_scalar;
        const ckls_isa_kernels *layers[2] = {isa == CKLS_ISA_AVX512 && have[CKLS_ISA_AVX2] ? own[CKLS_ISA_AVX2] : NULL,
                                             own[isa]};
        for (int l = 0; l < 2; l++) {
            if (!layers[l] || layers[l] == &ckls_kernels_scalar) continue;
            for (int t = 0; t < CKLS_TYPE_MAX; t++) {
                if (layers[l]->quantize_act[t]) resolved[isa].quantize_act[t] = layers[l]->quantize_act[t];
                if (layers[l]->vec_dot[t]) resolved[isa].vec_dot[t] = layers[l]->vec_dot[t];
                if (layers[l]->vec_dot_4r[t]) resolved[isa].vec_dot_4r[t] = layers[l]->vec_dot_4r[t];
                if (layers[l]->vec_dot_4c[t]) resolved[isa].vec_dot_4c[t] = layers[l]->vec_dot_4c[t];
                if (layers[l]->vec_dot_4x4[t]) resolved[isa].vec_dot_4x4[t] = layers[l]->vec_dot_4x4[t];
                if (layers[l]->gemm_x8[t]) resolved[isa].gemm_x8[t] = layers[l]->gemm_x8[t];
            }
            if (layers[l]->attn_group) resolved[isa].attn_group = layers[l]->attn_group;
        }
        active = isa;
    }
}

int ckls_isa_available(int isa) {
    pthread_once(&once, init);
    return isa >= 0 && isa < CKLS_ISA_COUNT && have[isa];
}

int ckls_isa_detected(void) {
    pthread_once(&once, init);
    int best = CKLS_ISA_SCALAR;
    for (int isa = 0; isa < CKLS_ISA_COUNT; isa++)
        if (have[isa]) best = isa;
    return best;
}

int ckls_isa_active(void) {
    pthread_once(&once, init);
    return active;
}

int ckls_set_isa(int isa) {
    if (!ckls_isa_available(isa)) return ckls_fail(CKLS_EINVAL, "ISA %s is not available on this CPU/build",
                                                   ckls_isa_name(isa));
    active = isa;
    return CKLS_OK;
}

const char *ckls_isa_name(int isa) {
    static const char *names[CKLS_ISA_COUNT] = {"scalar", "avx2", "avx512", "neon"};
    return isa >= 0 && isa < CKLS_ISA_COUNT ? names[isa] : "unknown";
}

const ckls_isa_kernels *ckls_isa_table(int isa) { return ckls_isa_available(isa) ? &resolved[isa] : NULL; }

const ckls_isa_kernels *ckls_active_kernels(void) {
    pthread_once(&once, init);
    return &resolved[active];
}
