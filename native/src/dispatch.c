/* dispatch.c — the one place that chooses kernels: CPU detection and the table of every ISA, for the forward
 * (quantizers, dots, interleaved GEMMs, attention) and for training (GEMM tile, transpose, exp and softmax rows).
 *
 * Each table lists the kernels its ISA has, by name; at first use they are resolved over the scalar table (every
 * gap keeps the scalar reference) and over the ISA's parents (parent[] below): AVX-512 over AVX2 (AVX-512 has
 * only the kernels its wider registers pay for), AVX512VNNI over AVX-512 (only the vpdpbusd kernels are its own),
 * AVXVNNI over AVX2 (only the 8-row vpdpbusd GEMMs, VEX-encoded, are its own: AVX512VNNI's, on the 16 registers),
 * NEONDOT over NEON (only the SDOT kernels are its own: the 8-row GEMMs and Q8_0's 4-row dot), AMX over AVX512VNNI
 * (only the tile GEMM is its own; it needs AMX-TILE/INT8 and, on Linux, the kernel's grant of the tile state). NEON is every
 * AArch64 CPU; NEONDOT needs the dot-product extension (FEAT_DotProd: Linux's HWCAP_ASIMDDP, macOS's
 * hw.optional.arm.FEAT_DotProd), and its files alone are built for it (-march=armv8.2-a+dotprod).
 * NEON has no training kernels yet: its training fields are the scalar references. CKLS_ISA (ckls/native.py
 * reads it and calls ckls_set_isa) pins the ISA for a run; the runtime, the training step and the benchmarks all
 * read ckls_active_kernels(), the tests ckls_isa_table(isa).
 *
 * An ISA's table exists only in builds that compiled its files with its flags (native/build.py defines
 * CKLS_HAVE_<ISA> for every file then); without it the ISA is simply absent. */
#include <pthread.h>

#include "quant.h"

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#elif defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>
#elif defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif

static const ckls_isa_kernels scalar_kernels = {
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
    .gemm_aux = {[CKLS_TYPE_Q4_0] = 1},
    .quantize_a7 = ckls_quantize_q8_0_a7_ref,
    .attn_kt = ckls_attn_kt_ref,
    .gemm_tile = ckls_gemm_tile_ref,
    .gemm_nt = ckls_gemm_nt_ref,
    .transpose = ckls_transpose_ref,
    .exp_shift = ckls_exp_shift_ref,
    .softmax = ckls_softmax_ref,
};

#if defined(CKLS_HAVE_AVX2)
static const ckls_isa_kernels avx2_kernels = {
    .quantize_act = {
        [CKLS_TYPE_Q8_0] = ckls_quantize_q8_0_avx2,
        [CKLS_TYPE_Q8_K] = ckls_quantize_q8_K_avx2,
    },
    .vec_dot = {
        [CKLS_TYPE_F32] = ckls_vec_dot_f32_f32_avx2,
        [CKLS_TYPE_F16] = ckls_vec_dot_f16_f32_avx2,
        [CKLS_TYPE_BF16] = ckls_vec_dot_bf16_f32_avx2,
        [CKLS_TYPE_Q8_0] = ckls_vec_dot_q8_0_q8_0_avx2,
        [CKLS_TYPE_Q4_0] = ckls_vec_dot_q4_0_q8_0_avx2,
        [CKLS_TYPE_Q4_K] = ckls_vec_dot_q4_K_q8_K_avx2,
        [CKLS_TYPE_Q6_K] = ckls_vec_dot_q6_K_q8_K_avx2,
    },
    .vec_dot_4r = {
        [CKLS_TYPE_Q8_0] = ckls_vec_dot_q8_0_q8_0_4r_avx2,
        [CKLS_TYPE_Q4_0] = ckls_vec_dot_q4_0_q8_0_4r_avx2,
    },
    .vec_dot_4x4 = {
        [CKLS_TYPE_Q8_0] = ckls_vec_dot_q8_0_q8_0_4x4_avx2,
        [CKLS_TYPE_Q4_0] = ckls_vec_dot_q4_0_q8_0_4x4_avx2,
    },
    .vec_dot_4c = {
        [CKLS_TYPE_Q8_0] = ckls_vec_dot_q8_0_q8_0_4c_avx2,
        [CKLS_TYPE_Q4_K] = ckls_vec_dot_q4_K_q8_K_4c_avx2,
        [CKLS_TYPE_Q6_K] = ckls_vec_dot_q6_K_q8_K_4c_avx2,
    },
    .gemm_x8 = {
        [CKLS_TYPE_Q4_0] = ckls_gemm_q4_0x8_avx2,
        [CKLS_TYPE_Q4_K] = ckls_gemm_q4_Kx8_avx2,
        [CKLS_TYPE_Q8_0] = ckls_gemm_q8_0x8_avx2,
    },
    .gemm_x8_a7 = ckls_gemm_q8_0x8_a7_avx2,
    .quantize_a7 = ckls_quantize_q8_0_a7_avx2,
    .quantize_i16 = ckls_quantize_i16_avx2,
    .gemm_i16x8 = ckls_gemm_i16x8_avx2,
    .attn_kt = ckls_attn_kt_avx2,
    .gemm_tile = ckls_gemm_tile_avx2,
    .gemm_nt = ckls_gemm_nt_avx2,
    .transpose = ckls_transpose_avx2,
    .exp_shift = ckls_exp_shift_avx2,
    .softmax = ckls_softmax_avx2,
};
#endif

#if defined(CKLS_HAVE_AVX2) && defined(CKLS_HAVE_AVX512)
static const ckls_isa_kernels avx512_kernels = {
    .vec_dot = {
        [CKLS_TYPE_F32] = ckls_vec_dot_f32_f32_avx512,
        [CKLS_TYPE_F16] = ckls_vec_dot_f16_f32_avx512,
        [CKLS_TYPE_Q8_0] = ckls_vec_dot_q8_0_q8_0_avx512,
        [CKLS_TYPE_Q4_0] = ckls_vec_dot_q4_0_q8_0_avx512,
    },
    .gemm_tile = ckls_gemm_tile_avx512,
    .attn_kt = ckls_attn_kt_avx512,
};
#endif

#if defined(CKLS_HAVE_AVX2) && defined(CKLS_HAVE_AVX512) && defined(CKLS_HAVE_AVX512VNNI)
static const ckls_isa_kernels avx512vnni_kernels = {
    .gemm_x8 = {
        [CKLS_TYPE_Q4_0] = ckls_gemm_q4_0x8_avx512vnni,
        [CKLS_TYPE_Q4_K] = ckls_gemm_q4_Kx8_avx512vnni,
        [CKLS_TYPE_Q8_0] = ckls_gemm_q8_0x8_avx512vnni,
        [CKLS_TYPE_Q6_K] = ckls_gemm_q6_Kx8_avx512vnni,
    },
    .gemm_aux = {[CKLS_TYPE_Q4_0] = 1, [CKLS_TYPE_Q8_0] = 1},
    .gemm_x16 = {
        [CKLS_TYPE_Q4_0] = ckls_gemm_q4_0x16_avx512vnni,
        [CKLS_TYPE_Q4_K] = ckls_gemm_q4_Kx16_avx512vnni,
        [CKLS_TYPE_Q8_0] = ckls_gemm_q8_0x16_avx512vnni,
        [CKLS_TYPE_Q6_K] = ckls_gemm_q6_Kx16_avx512vnni,
    },
    .gemm_i16x8 = ckls_gemm_i16x8_avx512vnni,
};
#endif

#if defined(CKLS_HAVE_AVX2) && defined(CKLS_HAVE_AVXVNNI)
static const ckls_isa_kernels avxvnni_kernels = {
    .gemm_x8 = {
        [CKLS_TYPE_Q4_0] = ckls_gemm_q4_0x8_avxvnni,
        [CKLS_TYPE_Q4_K] = ckls_gemm_q4_Kx8_avxvnni,
        [CKLS_TYPE_Q8_0] = ckls_gemm_q8_0x8_avxvnni,
        [CKLS_TYPE_Q6_K] = ckls_gemm_q6_Kx8_avxvnni,
    },
    .gemm_aux = {[CKLS_TYPE_Q4_0] = 1, [CKLS_TYPE_Q8_0] = 1},
    .gemm_i16x8 = ckls_gemm_i16x8_avxvnni,
};
#endif

#if defined(CKLS_HAVE_AVX2) && defined(CKLS_HAVE_AVX512) && defined(CKLS_HAVE_AVX512VNNI) && defined(CKLS_HAVE_AMX)
static const ckls_isa_kernels amx_kernels = {
    .gemm_tiles = {[CKLS_TYPE_Q8_0] = ckls_gemm_q8_0_tiles_amx},
};
#endif

#if defined(CKLS_HAVE_NEON)
static const ckls_isa_kernels neon_kernels = {
    .quantize_act = {
        [CKLS_TYPE_Q8_0] = ckls_quantize_q8_0_neon,
        [CKLS_TYPE_Q8_K] = ckls_quantize_q8_K_neon,
    },
    .vec_dot = {
        [CKLS_TYPE_F32] = ckls_vec_dot_f32_f32_neon,
        [CKLS_TYPE_F16] = ckls_vec_dot_f16_f32_neon,
        [CKLS_TYPE_Q8_0] = ckls_vec_dot_q8_0_q8_0_neon,
        [CKLS_TYPE_Q4_0] = ckls_vec_dot_q4_0_q8_0_neon,
        [CKLS_TYPE_Q4_K] = ckls_vec_dot_q4_K_q8_K_neon,
        [CKLS_TYPE_Q6_K] = ckls_vec_dot_q6_K_q8_K_neon,
    },
};
#endif

#if defined(CKLS_HAVE_NEON) && defined(CKLS_HAVE_NEONDOT)
static const ckls_isa_kernels neondot_kernels = {
    .vec_dot_4r = {
        [CKLS_TYPE_Q8_0] = ckls_vec_dot_q8_0_q8_0_4r_neondot, /* the row path's Q8_0 = the repacked one, bit for bit */
    },
    .gemm_x8 = {
        [CKLS_TYPE_Q4_0] = ckls_gemm_q4_0x8_neondot,
        [CKLS_TYPE_Q4_K] = ckls_gemm_q4_Kx8_neondot,
        [CKLS_TYPE_Q8_0] = ckls_gemm_q8_0x8_neondot,
    },
    .gemm_aux = {[CKLS_TYPE_Q4_0] = 1},
};
#endif

/* Each ISA's own table, NULL where this build has none. */
static const ckls_isa_kernels *const own_kernels[CKLS_ISA_COUNT] = {
    [CKLS_ISA_SCALAR] = &scalar_kernels,
#if defined(CKLS_HAVE_AVX2)
    [CKLS_ISA_AVX2] = &avx2_kernels,
#endif
#if defined(CKLS_HAVE_AVX2) && defined(CKLS_HAVE_AVX512)
    [CKLS_ISA_AVX512] = &avx512_kernels,
#endif
#if defined(CKLS_HAVE_NEON)
    [CKLS_ISA_NEON] = &neon_kernels,
#endif
#if defined(CKLS_HAVE_AVX2) && defined(CKLS_HAVE_AVX512) && defined(CKLS_HAVE_AVX512VNNI)
    [CKLS_ISA_AVX512VNNI] = &avx512vnni_kernels,
#endif
#if defined(CKLS_HAVE_NEON) && defined(CKLS_HAVE_NEONDOT)
    [CKLS_ISA_NEONDOT] = &neondot_kernels,
#endif
#if defined(CKLS_HAVE_AVX2) && defined(CKLS_HAVE_AVX512) && defined(CKLS_HAVE_AVX512VNNI) && defined(CKLS_HAVE_AMX)
    [CKLS_ISA_AMX] = &amx_kernels,
#endif
#if defined(CKLS_HAVE_AVX2) && defined(CKLS_HAVE_AVXVNNI)
    [CKLS_ISA_AVXVNNI] = &avxvnni_kernels,
#endif
};

/* The ISA whose kernels an ISA inherits where it has none of its own (-1: only the scalar table). */
static const int parent[CKLS_ISA_COUNT] = {
    [CKLS_ISA_SCALAR] = -1, [CKLS_ISA_AVX2] = -1, [CKLS_ISA_AVX512] = CKLS_ISA_AVX2, [CKLS_ISA_NEON] = -1,
    [CKLS_ISA_AVX512VNNI] = CKLS_ISA_AVX512, [CKLS_ISA_NEONDOT] = CKLS_ISA_NEON, [CKLS_ISA_AMX] = CKLS_ISA_AVX512VNNI,
    [CKLS_ISA_AVXVNNI] = CKLS_ISA_AVX2,
};

/* Which available ISA runs by default: the last of this order the CPU has (the enum's order is only the ABI's) */
static const int preference[CKLS_ISA_COUNT] = {CKLS_ISA_SCALAR,     CKLS_ISA_NEON, CKLS_ISA_NEONDOT,
                                               CKLS_ISA_AVX2,       CKLS_ISA_AVXVNNI, CKLS_ISA_AVX512,
                                               CKLS_ISA_AVX512VNNI, CKLS_ISA_AMX};

static ckls_isa_kernels resolved[CKLS_ISA_COUNT];
static int have[CKLS_ISA_COUNT];
static int active = CKLS_ISA_SCALAR;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Linux hands a process the AMX tile state (8 KB per thread, saved on every switch) only when it asks for it; an
 * AMX instruction without the grant faults. The grant is for the whole process, its threads to come included. */
static int tile_state_granted(void) {
#if defined(__linux__) && defined(__x86_64__)
    const long req_xcomp_perm = 0x1023, xfeature_xtiledata = 18;
    return syscall(SYS_arch_prctl, req_xcomp_perm, xfeature_xtiledata) == 0;
#else
    return 0; /* no request written for this OS: the AVX512VNNI table */
#endif
}

/* CPUID leaf 7's EDX bit (AMX-BF16 22, AMX-TILE 24, AMX-INT8 25), and its sub-leaf 1's EAX bit (AVX-VNNI 4): read
 * directly, as older compilers' __builtin_cpu_supports do not know these names */
static int cpuid7_edx(int bit) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d >> bit & 1);
#else
    (void)bit;
    return 0;
#endif
}

static int cpuid7_1_eax(int bit) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    return __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a >> bit & 1);
#else
    (void)bit;
    return 0;
#endif
}

static int cpu_has(int isa) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (isa == CKLS_ISA_AVX2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    if (isa == CKLS_ISA_AVX512)
        return cpu_has(CKLS_ISA_AVX2) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    if (isa == CKLS_ISA_AVX512VNNI) return cpu_has(CKLS_ISA_AVX512) && __builtin_cpu_supports("avx512vnni");
    if (isa == CKLS_ISA_AVXVNNI) return cpu_has(CKLS_ISA_AVX2) && cpuid7_1_eax(4);
    if (isa == CKLS_ISA_AMX)
        return cpu_has(CKLS_ISA_AVX512VNNI) && cpuid7_edx(24) && cpuid7_edx(25) && tile_state_granted();
    return 0;
#elif defined(__aarch64__)
    if (isa == CKLS_ISA_NEON) return 1;
    if (isa == CKLS_ISA_NEONDOT) {
#if defined(__linux__)
        return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#elif defined(__APPLE__)
        int v = 0;
        size_t len = sizeof v;
        return sysctlbyname("hw.optional.arm.FEAT_DotProd", &v, &len, NULL, 0) == 0 && v;
#else
        return 0; /* no detection written for this OS: the NEON table */
#endif
    }
    return 0;
#else
    return 0;
#endif
}

/* AMD family 19h (Zen 3, Zen 4) issues a 512-bit FMA as two 256-bit halves: on Zen 4 the AVX-512 f32 training
 * tile ran at 98 GFLOP/s against the AVX2 tile's 113 (one core, 64x64x256 and 96x128x512, bench/RESULTS.md), so
 * there the AVX-512 tables train on the AVX2 tile (native/tests/test_backward.c still tests the AVX-512 one). */
static int splits_512_bit_fma(void) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__builtin_cpu_is("amd") || !__get_cpuid(1, &a, &b, &c, &d)) return 0;
    unsigned family = (a >> 8) & 0xf;
    if (family == 0xf) family += (a >> 20) & 0xff;
    return family == 0x19;
#else
    return 0;
#endif
}

/* AVX512-BF16 is not an ISA level of its own (Zen 4 and Cooper Lake on have it, Ice Lake has VNNI without it): the
 * AVX-512 tables get its bf16 tile and conversions where the CPU has it; the AMX table, the AMX-BF16 tile where the
 * CPU has that too (every AMX CPU so far). */
static int cpu_has_bf16(void) {
#if defined(CKLS_HAVE_AVX512BF16) && (defined(__x86_64__) || defined(__i386__))
    return __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

static void init_tiles(void) {
    const int wide[] = {CKLS_ISA_AVX512, CKLS_ISA_AVX512VNNI, CKLS_ISA_AMX};
#if defined(CKLS_HAVE_AVX512BF16)
    for (int i = 0; i < 3; i++)
        if (have[wide[i]] && cpu_has_bf16()) {
            resolved[wide[i]].gemm_tile_bf16 = ckls_gemm_tile_bf16_avx512bf16;
            resolved[wide[i]].bf16_rows = ckls_bf16_rows_avx512bf16;
            resolved[wide[i]].bf16_pairs = ckls_bf16_pairs_avx512bf16;
        }
#if defined(CKLS_HAVE_AMX)
    if (have[CKLS_ISA_AMX] && cpu_has_bf16() && cpuid7_edx(22)) {
        resolved[CKLS_ISA_AMX].gemm_tile_bf16 = ckls_gemm_tile_bf16_amx;
        resolved[CKLS_ISA_AMX].bf16_tiles = 1;
    }
#endif
#endif
    if (!have[CKLS_ISA_AVX2] || !splits_512_bit_fma()) return;
    for (int i = 0; i < 3; i++)
        if (have[wide[i]]) resolved[wide[i]].gemm_tile = resolved[CKLS_ISA_AVX2].gemm_tile;
}

static void init(void) {
    const ckls_isa_kernels *const *own = own_kernels;
    for (int isa = 0; isa < CKLS_ISA_COUNT; isa++) {
        have[isa] = own[isa] != NULL && (isa == CKLS_ISA_SCALAR || cpu_has(isa));
        if (!have[isa]) continue;
        /* Start from the scalar table, overlay the parents' kernels from the root down, then the ISA's own
         * (a parent is always below its child in the enum, so its have[] is already known). */
        resolved[isa] = scalar_kernels;
        const ckls_isa_kernels *layers[CKLS_ISA_COUNT];
        int n_layers = 0;
        for (int p = isa; p >= 0; p = parent[p]) {
            if (p != isa && !have[p]) break;
            layers[n_layers++] = own[p];
        }
        for (int a = 0, b = n_layers - 1; a < b; a++, b--) { /* root first */
            const ckls_isa_kernels *tmp = layers[a];
            layers[a] = layers[b];
            layers[b] = tmp;
        }
        for (int l = 0; l < n_layers; l++) {
            if (!layers[l] || layers[l] == &scalar_kernels) continue;
            for (int t = 0; t < CKLS_TYPE_MAX; t++) {
                if (layers[l]->quantize_act[t]) resolved[isa].quantize_act[t] = layers[l]->quantize_act[t];
                if (layers[l]->vec_dot[t]) resolved[isa].vec_dot[t] = layers[l]->vec_dot[t];
                if (layers[l]->vec_dot_4r[t]) resolved[isa].vec_dot_4r[t] = layers[l]->vec_dot_4r[t];
                if (layers[l]->vec_dot_4c[t]) resolved[isa].vec_dot_4c[t] = layers[l]->vec_dot_4c[t];
                if (layers[l]->vec_dot_4x4[t]) resolved[isa].vec_dot_4x4[t] = layers[l]->vec_dot_4x4[t];
                if (layers[l]->gemm_x8[t]) resolved[isa].gemm_x8[t] = layers[l]->gemm_x8[t];
                if (layers[l]->gemm_x16[t]) resolved[isa].gemm_x16[t] = layers[l]->gemm_x16[t];
                if (layers[l]->gemm_tiles[t]) resolved[isa].gemm_tiles[t] = layers[l]->gemm_tiles[t];
                if (layers[l]->gemm_aux[t]) resolved[isa].gemm_aux[t] = 1;
            }
            if (layers[l]->gemm_x8[CKLS_TYPE_Q8_0]) resolved[isa].gemm_x8_a7 = layers[l]->gemm_x8_a7;
            if (layers[l]->quantize_a7) resolved[isa].quantize_a7 = layers[l]->quantize_a7;
            if (layers[l]->attn_kt) resolved[isa].attn_kt = layers[l]->attn_kt;
            if (layers[l]->gemm_tile) resolved[isa].gemm_tile = layers[l]->gemm_tile;
            if (layers[l]->gemm_nt) resolved[isa].gemm_nt = layers[l]->gemm_nt;
            if (layers[l]->transpose) resolved[isa].transpose = layers[l]->transpose;
            if (layers[l]->exp_shift) resolved[isa].exp_shift = layers[l]->exp_shift;
            if (layers[l]->softmax) resolved[isa].softmax = layers[l]->softmax;
            if (layers[l]->quantize_i16) resolved[isa].quantize_i16 = layers[l]->quantize_i16;
            if (layers[l]->gemm_i16x8) resolved[isa].gemm_i16x8 = layers[l]->gemm_i16x8;
        }
    }
    for (int i = 0; i < CKLS_ISA_COUNT; i++)
        if (have[preference[i]]) active = preference[i];
    init_tiles();
}

int ckls_isa_available(int isa) {
    pthread_once(&once, init);
    return isa >= 0 && isa < CKLS_ISA_COUNT && have[isa];
}

int ckls_isa_detected(void) {
    pthread_once(&once, init);
    int best = CKLS_ISA_SCALAR;
    for (int i = 0; i < CKLS_ISA_COUNT; i++)
        if (have[preference[i]]) best = preference[i];
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
    static const char *names[CKLS_ISA_COUNT] = {"scalar", "avx2", "avx512", "neon", "avx512vnni", "neondot", "amx",
                                                "avxvnni"};
    return isa >= 0 && isa < CKLS_ISA_COUNT ? names[isa] : "unknown";
}

const ckls_isa_kernels *ckls_isa_table(int isa) { return ckls_isa_available(isa) ? &resolved[isa] : NULL; }

const ckls_isa_kernels *ckls_active_kernels(void) {
    pthread_once(&once, init);
    return &resolved[active];
}
