/* quant.h — scalar reference kernels of every block format: the ground truth SIMD files are tested against.
 * Dequantize: x -> y (n floats). Quantize: x (n floats) -> y blocks. Dot: weight row · quantized activation. */
#ifndef CKLS_QUANT_H
#define CKLS_QUANT_H

#include "internal.h"

/* Round to nearest, ties to even, via the 1.5*2^23 trick exactly as ggml does it (valid for |x| < 2^22; NaN
 * gives 0). Q8_K and the K-quant quantizers depend on these exact ties. */
static inline int ckls_nearest_int(float x) {
    float v = x + 12582912.0f;
    int32_t i;
    memcpy(&i, &v, 4);
    return (i & 0x007fffff) - 0x00400000;
}

/* float rows (quant_float.c) */
void ckls_dequantize_f32(const void *x, float *y, int64_t n);
void ckls_quantize_f32(const float *x, void *y, int64_t n);
void ckls_dequantize_f16(const void *x, float *y, int64_t n);
void ckls_quantize_f16(const float *x, void *y, int64_t n);
void ckls_dequantize_bf16(const void *x, float *y, int64_t n);
void ckls_quantize_bf16(const float *x, void *y, int64_t n);

/* Q8_0 (quant_q8_0.c) */
void ckls_dequantize_q8_0(const void *x, float *y, int64_t n);

/* Q4_0 (quant_q4_0.c) */
void ckls_dequantize_q4_0(const void *x, float *y, int64_t n);
void ckls_quantize_q4_0(const float *x, void *y, int64_t n);

/* Q8_K (quant_q8_k.c): activations only */
void ckls_dequantize_q8_K(const void *x, float *y, int64_t n);

/* Q4_K (quant_q4_k.c) */
void ckls_dequantize_q4_K(const void *x, float *y, int64_t n);
void ckls_quantize_q4_K(const float *x, void *y, int64_t n);
void ckls_quantize_q4_K_imatrix(const float *x, void *y, int64_t n, const float *imatrix);

/* Q4_K's 12 scale bytes -> scale and min of sub-block j: j < 4 in the low 6 bits of bytes j / j+4; j >= 4 split
 * between the low/high nibble of byte j+4 and the top 2 bits of bytes j-4 / j. */
static inline void ckls_q4k_scale_min(int j, const uint8_t *s, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* Q6_K (quant_q6_k.c) */
/* Level (0..63) of element i (0..255) of a block. Elements come in runs of 128: ql byte l (l < 64) holds
 * element l in its low nibble and l + 64 in its high one; qh byte l (l < 32) holds the top 2 bits of elements
 * l, l + 32, l + 64, l + 96. */
static inline int ckls_q6k_level(const block_q6_K *b, int i) {
    const int half = i / 128, r = i % 128;
    const uint8_t ql = b->ql[64 * half + (r % 64)];
    const uint8_t qh = b->qh[32 * half + (r % 32)];
    const int lo = r < 64 ? (ql & 0x0F) : (ql >> 4);
    return lo | (((qh >> (2 * (r / 32))) & 3) << 4);
}
void ckls_dequantize_q6_K(const void *x, float *y, int64_t n);
void ckls_quantize_q6_K(const float *x, void *y, int64_t n);
void ckls_quantize_q6_K_imatrix(const float *x, void *y, int64_t n, const float *imatrix);

/* ---- the row kernels the runtime dispatches (dispatch.c): each scalar reference (_ref) beside its ISA versions,
 * in files of one family: quant_q8_0{,_avx2,_neon}.c, quant_q8_k{,_avx2,_neon}.c, dot{,_avx2,_avx512,_neon,_neondot}.c.
 * The multi-row forms (4r, 4c, 4x4: see ckls_isa_kernels) have no reference of their own: per row and token they
 * equal the one-row kernel of their ISA bit for bit. ISA versions exist only in builds with that ISA. ---------- */
/* activation quantizers */
void ckls_quantize_q8_0_ref(const float *x, void *y, int64_t n);
void ckls_quantize_q8_0_avx2(const float *x, void *y, int64_t n);
void ckls_quantize_q8_0_neon(const float *x, void *y, int64_t n);
/* quants in [-64, 63], and where off is set the blocks' gemm_x8_a7 terms (ckls_q8_0_a7_terms): quant_q8_0.c */
void ckls_quantize_q8_0_a7_ref(const float *x, void *y, int64_t n, int32_t *off, float *d);
void ckls_quantize_q8_0_a7_avx2(const float *x, void *y, int64_t n, int32_t *off, float *d);
void ckls_quantize_q8_K_ref(const float *x, void *y, int64_t n);
void ckls_quantize_q8_K_avx2(const float *x, void *y, int64_t n);
void ckls_quantize_q8_K_neon(const float *x, void *y, int64_t n);
/* dots of one weight row with one activation row */
void ckls_vec_dot_f32_f32_ref(int64_t n, float *s, const void *w, const void *x);
void ckls_vec_dot_f32_f32_avx2(int64_t n, float *s, const void *w, const void *x);
void ckls_vec_dot_f32_f32_avx512(int64_t n, float *s, const void *w, const void *x);
void ckls_vec_dot_f32_f32_neon(int64_t n, float *s, const void *w, const void *x);
void ckls_vec_dot_f16_f32_ref(int64_t n, float *s, const void *w, const void *x);
void ckls_vec_dot_f16_f32_avx2(int64_t n, float *s, const void *w, const void *x);
void ckls_vec_dot_f16_f32_avx512(int64_t n, float *s, const void *w, const void *x);
void ckls_vec_dot_f16_f32_neon(int64_t n, float *s, const void *w, const void *x);
void ckls_vec_dot_bf16_f32_ref(int64_t n, float *s, const void *w, const void *x);
void ckls_vec_dot_bf16_f32_avx2(int64_t n, float *s, const void *w, const void *x);
void ckls_vec_dot_q8_0_q8_0_ref(int64_t n, float *s, const void *w, const void *x);
void ckls_vec_dot_q8_0_q8_0_avx2(int64_t n, float *s, const void *w, const void *x);
void ckls_vec_dot_q8_0_q8_0_avx512(int64_t n, float *s, const void *w, const void *x);
void ckls_vec_dot_q8_0_q8_0_neon(int64_t n, float *s, const void *w, const void *x);
void ckls_vec_dot_q4_0_q8_0_ref(int64_t n, float *s, const void *w, const void *x);
void ckls_vec_dot_q4_0_q8_0_avx2(int64_t n, float *s, const void *w, const void *x);
void ckls_vec_dot_q4_0_q8_0_avx512(int64_t n, float *s, const void *w, const void *x);
void ckls_vec_dot_q4_0_q8_0_neon(int64_t n, float *s, const void *w, const void *x);
void ckls_vec_dot_q4_K_q8_K_ref(int64_t n, float *s, const void *w, const void *x);
void ckls_vec_dot_q4_K_q8_K_avx2(int64_t n, float *s, const void *w, const void *x);
void ckls_vec_dot_q4_K_q8_K_neon(int64_t n, float *s, const void *w, const void *x);
void ckls_vec_dot_q6_K_q8_K_ref(int64_t n, float *s, const void *w, const void *x);
void ckls_vec_dot_q6_K_q8_K_avx2(int64_t n, float *s, const void *w, const void *x);
void ckls_vec_dot_q6_K_q8_K_neon(int64_t n, float *s, const void *w, const void *x);
/* 4 weight rows x 1 activation row, 1 x 4, 4 x 4 */
void ckls_vec_dot_q8_0_q8_0_4r_avx2(int64_t n, float *s, const void *w, int64_t w_stride, const void *x);
void ckls_vec_dot_q4_0_q8_0_4r_avx2(int64_t n, float *s, const void *w, int64_t w_stride, const void *x);
void ckls_vec_dot_q8_0_q8_0_4c_avx2(int64_t n, float *s, const void *w, const void *x, int64_t x_stride);
void ckls_vec_dot_q4_K_q8_K_4c_avx2(int64_t n, float *s, const void *w, const void *x, int64_t x_stride);
void ckls_vec_dot_q6_K_q8_K_4c_avx2(int64_t n, float *s, const void *w, const void *x, int64_t x_stride);
void ckls_vec_dot_q8_0_q8_0_4x4_avx2(int64_t n, float *s, const void *w, int64_t w_stride,
    const void *x, int64_t x_stride);
void ckls_vec_dot_q4_0_q8_0_4x4_avx2(int64_t n, float *s, const void *w, int64_t w_stride,
    const void *x, int64_t x_stride);
/* NEON with the dot-product extension (dot_neondot.c): Q8_0's 4 rows, per row the arithmetic of gemm_x8 */
void ckls_vec_dot_q8_0_q8_0_4r_neondot(int64_t n, float *s, const void *w, int64_t w_stride, const void *x);

/* Interleaved 8-row layouts (repack.c; block_q4_0x8 / block_q4_Kx8 in internal.h) */
/* Bytes of the repacked form of n_out rows of n_in: every full group of 8 rows (tail rows stay in the original
 * layout); 0 for types without one or n_out < 8, -1 for a row length that is not a multiple of the block. */
int64_t ckls_packed_bytes(int type, int64_t n_out, int64_t n_in);
/* Repacks groups g0..g1-1 of 8 rows (w: n_in per row, original layout) into dst (the whole packed matrix). */
void ckls_repack_groups(int type, const void *w, int64_t n_in, int64_t g0, int64_t g1, void *dst);
/* aux for Q4_0 and Q8_0 groups: the int16 sum of each Q8_0 activation block (n / 32 per row), n_tok rows xq_stride apart */
void ckls_q8_0_block_sums(const void *xq, int64_t xq_stride, int64_t n, int64_t n_tok, int16_t *out);
/* the gemm_x8_a7 kernels' per-block terms of n_tok rows of 7-bit Q8_0 activations (n / 32 per row): off = -128 *
 * the block's quant sum (their weights go in as w + 128), d = its scale as f32 */
void ckls_q8_0_a7_terms(const void *xq, int64_t xq_stride, int64_t n, int64_t n_tok, int32_t *off, float *d);
/* Scalar references of the gemm_x8 kernels: the SIMD ones must equal them bit for bit. */
void ckls_gemm_q4_0x8_ref(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                          const int16_t *aux, int nt);
void ckls_gemm_q4_Kx8_ref(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                          const int16_t *aux, int nt);
void ckls_gemm_q8_0x8_ref(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                          const int16_t *aux, int nt);
void ckls_gemm_q6_Kx8_ref(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                          const int16_t *aux, int nt);
/* their AVX2 versions (repack_avx2.c; absent from builds without AVX2) */
void ckls_gemm_q4_0x8_avx2(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                           const int16_t *aux, int nt);
void ckls_gemm_q4_Kx8_avx2(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                           const int16_t *aux, int nt);
void ckls_gemm_q8_0x8_a7_avx2(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                              const int32_t *off, const float *xd, int nt); /* the gemm_x8_a7 field */
void ckls_gemm_q8_0x8_avx2(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                           const int16_t *aux, int nt);
/* their AVX-512 VNNI versions (repack_avx512vnni.c; vpdpbusd on 256-bit registers): Q4_0 and Q8_0 need aux */
void ckls_gemm_q4_0x8_avx512vnni(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                                 const int16_t *aux, int nt);
void ckls_gemm_q4_Kx8_avx512vnni(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                                 const int16_t *aux, int nt);
void ckls_gemm_q8_0x8_avx512vnni(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                                 const int16_t *aux, int nt);
void ckls_gemm_q6_Kx8_avx512vnni(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                                 const int16_t *aux, int nt);
/* their AArch64 SDOT versions (repack_neondot.c; builds and CPUs with the dot-product extension): Q4_0 needs aux */
void ckls_gemm_q4_0x8_neondot(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                              const int16_t *aux, int nt);
void ckls_gemm_q4_Kx8_neondot(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                              const int16_t *aux, int nt);
void ckls_gemm_q8_0x8_neondot(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                              const int16_t *aux, int nt);
/* ... and over two adjacent groups (w, w + ws bytes) in 512-bit registers: the gemm_x16 table field */
void ckls_gemm_q4_0x16_avx512vnni(int64_t n, float *s, int64_t ss, const void *w, int64_t ws, const void *xq,
                                  int64_t xs, const int16_t *aux, int nt);
void ckls_gemm_q4_Kx16_avx512vnni(int64_t n, float *s, int64_t ss, const void *w, int64_t ws, const void *xq,
                                  int64_t xs, const int16_t *aux, int nt);
void ckls_gemm_q8_0x16_avx512vnni(int64_t n, float *s, int64_t ss, const void *w, int64_t ws, const void *xq,
                                  int64_t xs, const int16_t *aux, int nt);
void ckls_gemm_q6_Kx16_avx512vnni(int64_t n, float *s, int64_t ss, const void *w, int64_t ws, const void *xq,
                                  int64_t xs, const int16_t *aux, int nt);
/* their AVX-VNNI versions (repack_avxvnni.c: the same kernels, VEX vpdpbusd; AVX2 cores without AVX-512) */
void ckls_gemm_q4_0x8_avxvnni(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                              const int16_t *aux, int nt);
void ckls_gemm_q4_Kx8_avxvnni(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                              const int16_t *aux, int nt);
void ckls_gemm_q8_0x8_avxvnni(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                              const int16_t *aux, int nt);
void ckls_gemm_q6_Kx8_avxvnni(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                              const int16_t *aux, int nt);
/* Q8_0 on AMX tiles (the gemm_tiles table field), over the activations as ckls_q8_0_tiles_pack lays them out */
void ckls_gemm_q8_0_tiles_amx(int64_t n, float *s, int64_t ss, const void *w, int64_t rb, int64_t n_tiles,
                              const int8_t *xb, const float *xd, int64_t nt);
void ckls_q8_0_tiles_pack(const void *xq, int64_t xs, int64_t n, int64_t nt, int8_t *xb, float *xd);
/* the tile kernels' longest row, in blocks (their weight scales stay on the stack): longer rows take gemm_x16 */
#define CKLS_TILES_MAX_BLOCKS 512

#endif
