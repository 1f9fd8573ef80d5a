/* repack.c — the interleaved 8-row layouts (block_q4_0x8, block_q4_Kx8, block_q8_0x8, block_q6_Kx8; internal.h) made from a GGUF matrix at
 * load, and the scalar references of the kernels that read them (gemm_x8 in the ISA tables).
 *
 * Per (row, token) the references do what the SIMD kernels do lane by lane: an exact integer sum per block,
 * then one float FMA per block (two for Q4_K: scales, then mins) in block order. The integer part is exact, so
 * any order of the integer adds gives the same float; the SIMD kernels must match these bit for bit. */
#include <math.h>

#include "quant.h"

int64_t ckls_packed_bytes(int type, int64_t n_out, int64_t n_in) {
    int64_t blck, size;
    if (type == CKLS_TYPE_Q4_0) blck = QK4_0, size = sizeof(block_q4_0x8);
    else if (type == CKLS_TYPE_Q4_K) blck = QK_K, size = sizeof(block_q4_Kx8);
    else if (type == CKLS_TYPE_Q8_0) blck = QK8_0, size = sizeof(block_q8_0x8);
    else if (type == CKLS_TYPE_Q6_K) blck = QK_K, size = sizeof(block_q6_Kx8);
    else return 0;
    if (n_in <= 0 || n_in % blck) return -1;
    return n_out / CKLS_PACK_ROWS * (n_in / blck) * size;
}

static void repack_q4_0(const block_q4_0 *w, int64_t nb, block_q4_0x8 *out) {
    for (int64_t i = 0; i < nb; i++)
        for (int r = 0; r < 8; r++) {
            const block_q4_0 *b = &w[r * nb + i];
            out[i].d[r] = b->d;
            for (int m = 0; m < 4; m++) memcpy(out[i].qs + 32 * m + 4 * r, b->qs + 4 * m, 4);
        }
}

static void repack_q8_0(const block_q8_0 *w, int64_t nb, block_q8_0x8 *out) {
    for (int64_t i = 0; i < nb; i++)
        for (int r = 0; r < 8; r++) {
            const block_q8_0 *b = &w[r * nb + i];
            out[i].d[r] = b->d;
            for (int m = 0; m < 8; m++) memcpy(out[i].qs + 32 * m + 4 * r, b->qs + 4 * m, 4);
        }
}

static void repack_q4_K(const block_q4_K *w, int64_t nb, block_q4_Kx8 *out) {
    for (int64_t i = 0; i < nb; i++)
        for (int r = 0; r < 8; r++) {
            const block_q4_K *b = &w[r * nb + i];
            out[i].d[r] = b->d;
            out[i].dmin[r] = b->dmin;
            for (int j = 0; j < 8; j++) {
                int sc, mn;
                ckls_q4k_scale_min(j, b->scales, &sc, &mn);
                out[i].scales[j][r] = (uint8_t)sc;
                out[i].mins[j / 2][r][j % 2] = (uint8_t)mn;
            }
            for (int c = 0; c < 4; c++)
                for (int m = 0; m < 8; m++) memcpy(out[i].qs + 32 * (8 * c + m) + 4 * r, b->qs + 32 * c + 4 * m, 4);
        }
}

static void repack_q6_K(const block_q6_K *w, int64_t nb, block_q6_Kx8 *out) {
    for (int64_t i = 0; i < nb; i++)
        for (int r = 0; r < 8; r++) {
            const block_q6_K *b = &w[r * nb + i];
            out[i].d[r] = b->d;
            for (int j = 0; j < 16; j++) out[i].scales[j][r] = b->scales[j];
            for (int c = 0; c < 4; c++)
                for (int m = 0; m < 8; m++) memcpy(out[i].ql + 32 * (8 * c + m) + 4 * r, b->ql + 32 * c + 4 * m, 4);
            for (int h = 0; h < 2; h++)
                for (int m = 0; m < 8; m++) memcpy(out[i].qh + 32 * (8 * h + m) + 4 * r, b->qh + 32 * h + 4 * m, 4);
        }
}

void ckls_repack_groups(int type, const void *w, int64_t n_in, int64_t g0, int64_t g1, void *dst) {
    if (type == CKLS_TYPE_Q4_0) {
        const int64_t nb = n_in / QK4_0;
        for (int64_t g = g0; g < g1; g++)
            repack_q4_0((const block_q4_0 *)w + g * 8 * nb, nb, (block_q4_0x8 *)dst + g * nb);
    } else if (type == CKLS_TYPE_Q4_K) {
        const int64_t nb = n_in / QK_K;
        for (int64_t g = g0; g < g1; g++)
            repack_q4_K((const block_q4_K *)w + g * 8 * nb, nb, (block_q4_Kx8 *)dst + g * nb);
    } else if (type == CKLS_TYPE_Q8_0) {
        const int64_t nb = n_in / QK8_0;
        for (int64_t g = g0; g < g1; g++)
            repack_q8_0((const block_q8_0 *)w + g * 8 * nb, nb, (block_q8_0x8 *)dst + g * nb);
    } else if (type == CKLS_TYPE_Q6_K) {
        const int64_t nb = n_in / QK_K;
        for (int64_t g = g0; g < g1; g++)
            repack_q6_K((const block_q6_K *)w + g * 8 * nb, nb, (block_q6_Kx8 *)dst + g * nb);
    }
}

static int quant_sum(const block_q8_0 *b) { /* |sum| <= 32 * 128 */
    int sum = 0;
    for (int k = 0; k < QK8_0; k++) sum += b->qs[k];
    return sum;
}

void ckls_q8_0_block_sums(const void *xq, int64_t xq_stride, int64_t n, int64_t n_tok, int16_t *out) {
    const int64_t nb = n / QK8_0;
    for (int64_t t = 0; t < n_tok; t++) {
        const block_q8_0 *b = (const block_q8_0 *)((const char *)xq + t * xq_stride);
        for (int64_t i = 0; i < nb; i++) out[t * nb + i] = (int16_t)quant_sum(&b[i]);
    }
}

void ckls_q8_0_a7_terms(const void *xq, int64_t xq_stride, int64_t n, int64_t n_tok, int32_t *off, float *d) {
    const int64_t nb = n / QK8_0;
    for (int64_t t = 0; t < n_tok; t++) {
        const block_q8_0 *b = (const block_q8_0 *)((const char *)xq + t * xq_stride);
        for (int64_t i = 0; i < nb; i++) {
            off[t * nb + i] = -128 * quant_sum(&b[i]);
            d[t * nb + i] = ckls_f16_to_f32(b[i].d);
        }
    }
}

void ckls_gemm_q4_0x8_ref(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                          const int16_t *aux, int nt) {
    const block_q4_0x8 *a = w;
    const int64_t nb = n / QK4_0;
    for (int t = 0; t < nt; t++) {
        const block_q8_0 *b = (const block_q8_0 *)((const char *)xq + t * xs);
        for (int r = 0; r < 8; r++) {
            float acc = 0.0f;
            for (int64_t i = 0; i < nb; i++) {
                int32_t sum = 0;
                for (int m = 0; m < 4; m++)
                    for (int k = 0; k < 4; k++) {
                        const uint8_t q = a[i].qs[32 * m + 4 * r + k];
                        sum += (q & 0x0F) * b[i].qs[4 * m + k] + (q >> 4) * b[i].qs[16 + 4 * m + k];
                    }
                sum -= 8 * aux[t * nb + i];
                acc = fmaf((float)sum, ckls_f16_to_f32(a[i].d[r]) * ckls_f16_to_f32(b[i].d), acc);
            }
            s[t * ss + r] = acc;
        }
    }
}

void ckls_gemm_q4_Kx8_ref(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                          const int16_t *aux, int nt) {
    (void)aux;
    const block_q4_Kx8 *a = w;
    const int64_t nb = n / QK_K;
    for (int t = 0; t < nt; t++) {
        const block_q8_K *b = (const block_q8_K *)((const char *)xq + t * xs);
        for (int r = 0; r < 8; r++) {
            float acc = 0.0f;
            for (int64_t i = 0; i < nb; i++) {
                int32_t sumi = 0, summ = 0;
                for (int j = 0; j < 8; j++) {
                    const int c = j / 2, shift = 4 * (j & 1);
                    int32_t sub = 0;
                    for (int m = 0; m < 8; m++)
                        for (int k = 0; k < 4; k++)
                            sub += ((a[i].qs[32 * (8 * c + m) + 4 * r + k] >> shift) & 0x0F) *
                                   b[i].qs[32 * j + 4 * m + k];
                    sumi += a[i].scales[j][r] * sub;
                    summ += a[i].mins[j / 2][r][j % 2] * (b[i].bsums[2 * j] + b[i].bsums[2 * j + 1]);
                }
                acc = fmaf((float)sumi, ckls_f16_to_f32(a[i].d[r]) * b[i].d, acc);
                acc = fmaf(-(float)summ, ckls_f16_to_f32(a[i].dmin[r]) * b[i].d, acc);
            }
            s[t * ss + r] = acc;
        }
    }
}

/* The same per-row arithmetic as the Q8_0 row kernels (dot_q8_0_4r, the 4x4 tile): an exact int32 block sum,
 * then acc = fma(sum, dw * dy, acc) in block order from 0 — so repacked and row outputs are bit-identical. */
void ckls_gemm_q8_0x8_ref(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                          const int16_t *aux, int nt) {
    (void)aux;
    const block_q8_0x8 *a = w;
    const int64_t nb = n / QK8_0;
    for (int t = 0; t < nt; t++) {
        const block_q8_0 *b = (const block_q8_0 *)((const char *)xq + t * xs);
        for (int r = 0; r < 8; r++) {
            float acc = 0.0f;
            for (int64_t i = 0; i < nb; i++) {
                int32_t sum = 0;
                for (int m = 0; m < 8; m++)
                    for (int k = 0; k < 4; k++) sum += a[i].qs[32 * m + 4 * r + k] * b[i].qs[4 * m + k];
                acc = fmaf((float)sum, ckls_f16_to_f32(a[i].d[r]) * ckls_f16_to_f32(b[i].d), acc);
            }
            s[t * ss + r] = acc;
        }
    }
}

/* Q6_K: per sub-block j of 16 the exact sum of (level - 32) * y, times the row's int8 scale, summed over the
 * block into one int32 (|sum| < 16 * 128 * 16 * 32 * 128), then one FMA per block with d_r * d_y. (The VNNI
 * kernels start each sub-block's sum at -32 * the activation's bsums[j], which the Q8_K quantizer makes the sum
 * of those 16 values: the same integer.) */
void ckls_gemm_q6_Kx8_ref(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                          const int16_t *aux, int nt) {
    (void)aux;
    const block_q6_Kx8 *a = w;
    const int64_t nb = n / QK_K;
    for (int t = 0; t < nt; t++) {
        const block_q8_K *b = (const block_q8_K *)((const char *)xq + t * xs);
        for (int r = 0; r < 8; r++) {
            float acc = 0.0f;
            for (int64_t i = 0; i < nb; i++) {
                int32_t isum = 0;
                for (int j = 0; j < 16; j++) {
                    int32_t sub = 0;
                    for (int e = 16 * j; e < 16 * j + 16; e++) {
                        /* element e = 128 h + 32 k + 4 m + q: ql run 2h + k%2 (high nibble for k >= 2), qh bits 2k */
                        const int h = e / 128, k = (e % 128) / 32, m = (e % 32) / 4, q = e % 4;
                        const uint8_t lb = a[i].ql[32 * (8 * (2 * h + k % 2) + m) + 4 * r + q];
                        const uint8_t hb = a[i].qh[32 * (8 * h + m) + 4 * r + q];
                        const int level = (k >= 2 ? lb >> 4 : lb & 0x0F) | (((hb >> (2 * k)) & 3) << 4);
                        sub += (level - 32) * b[i].qs[e];
                    }
                    isum += a[i].scales[j][r] * sub;
                }
                acc = fmaf((float)isum, ckls_f16_to_f32(a[i].d[r]) * b[i].d, acc);
            }
            s[t * ss + r] = acc;
        }
    }
}

/* the activations of nt tokens (nt / 16 whole tiles), in tile B's layout: per token tile and block, 8 rows of
 * (4 bytes of each of 16 tokens), and their scales as floats, 16 per token tile and block */
void ckls_q8_0_tiles_pack(const void *xq, int64_t xs, int64_t n, int64_t nt, int8_t *xb, float *xd) {
    const int64_t nb = n / QK8_0;
    for (int64_t t0 = 0; t0 + 16 <= nt; t0 += 16)
        for (int t = 0; t < 16; t++) {
            const block_q8_0 *x = (const block_q8_0 *)((const char *)xq + (t0 + t) * xs);
            for (int64_t i = 0; i < nb; i++) {
                int8_t *b = xb + ((t0 / 16) * nb + i) * 16 * QK8_0;
                for (int m = 0; m < QK8_0 / 4; m++) {
                    int32_t v;
                    memcpy(&v, x[i].qs + 4 * m, 4);
                    memcpy(b + m * 64 + t * 4, &v, 4);
                }
                xd[((t0 / 16) * nb + i) * 16 + t] = ckls_f16_to_f32(x[i].d);
            }
        }
}
