/* repack_amx.c — Q8_0 prompt GEMM on AMX-INT8 tiles (Xeons from Sapphire Rapids on).
 *
 * One tdpbssd multiplies 16 weight rows x one Q8_0 block (32 bytes each, loaded straight from the GGUF rows with
 * their row stride: tile A) by one block of 16 tokens (tile B, the activations repacked once per matmul by
 * ckls_q8_0_tiles_pack, repack.c: 8 rows of 4 bytes of each of 16 tokens) into 16 x 16 exact int32 block sums (tile C, a
 * row per weight row, a lane per token). The float work is the reference's, one FMA per block with the scale
 * product dw * dy, in block order, so every output equals ckls_gemm_q8_0x8_ref bit for bit; it runs on 16-lane
 * vectors of tokens, and the accumulators are transposed to the output once at the end. Two sets of tiles take
 * alternate blocks, and the code is software-pipelined (block i's tiles are issued before block i - 1's float
 * work), so the tiles multiply while the vectors work: in order, the two ran one after the other. The f32 epilogue
 * (3 vector ops per row and block) bounds the kernel: on this Xeon (KVM, 2 cores) one core's 1,408-long rows run
 * at about 300 MAC/ns against the VNNI 16-row kernel's 170 (native/tools/bench_gemm.c).
 *
 * The tile configuration is loaded on entry and the tiles released on exit of every call, so a library in the
 * same thread that uses AMX between two calls (oneDNN inside PyTorch does) cannot leave a configuration behind that
 * our instructions would run under; one call covers a chunk of row tiles x all the 16-token tiles, so that costs
 * little. The OS must have granted the process the tile state (dispatch.c asks Linux for it before choosing AMX). */
#include <stddef.h>

#include "quant.h"

#if defined(__AMX_TILE__) && defined(__AMX_INT8__) && defined(__AVX512F__)
#include "amx_tiles.h"

/* Tiles (GCC's tile intrinsics take literal numbers): 0, 1, 2 = A, B, C of even blocks; 3, 4, 5 of odd ones.
 * A: 16 weight rows x one block's 32 bytes; B: 8 x (4 bytes of 16 tokens); C: 16 rows x 16 tokens, int32. */
static void load_config(void) {
    static const uint8_t rows[8] = {16, QK8_0 / 4, 16, 16, QK8_0 / 4, 16, 0, 0};
    static const uint16_t colsb[8] = {QK8_0, 64, 64, QK8_0, 64, 64, 0, 0};
    ckls_tiles_configure(rows, colsb);
}

/* acc[r] += (float)sums[r] * (dy * dw[r]), lanes = tokens */
static inline __attribute__((always_inline)) void epilogue(__m512 *acc, const int32_t *sums, const float *dw,
                                                           __m512 dy) {
    for (int r = 0; r < 16; r++)
        acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(sums + 16 * r)),
                                 _mm512_mul_ps(_mm512_set1_ps(dw[r]), dy), acc[r]);
}

void ckls_gemm_q8_0_tiles_amx(int64_t n, float *s, int64_t ss, const void *w, int64_t rb, int64_t n_tiles,
                              const int8_t *xb, const float *xd, int64_t nt) {
    const int64_t nb = n / QK8_0;
    int32_t sums[2][16 * 16] __attribute__((aligned(64)));
    float dw[CKLS_TILES_MAX_BLOCKS * 16]; /* the row tile's weight scales, [block][row] */
    load_config();
    for (int64_t p = 0; p < n_tiles; p++) {
        const char *wp = (const char *)w + 16 * p * rb + offsetof(block_q8_0, qs);
        for (int r = 0; r < 16; r++) {
            const block_q8_0 *row = (const block_q8_0 *)((const char *)w + (16 * p + r) * rb);
            for (int64_t i = 0; i < nb; i++) dw[i * 16 + r] = ckls_f16_to_f32(row[i].d);
        }
        for (int64_t tt = 0; tt < nt / 16; tt++) {
            const int8_t *b = xb + tt * nb * 16 * QK8_0;
            const float *dy = xd + tt * nb * 16;
            __m512 acc[16];
            for (int r = 0; r < 16; r++) acc[r] = _mm512_setzero_ps();
            /* software-pipelined: block i's tiles multiply while the vectors take block i - 1's sums */
#define TILE_BLOCK(A, B, C, i, buf)                                                                        \
    do {                                                                                                   \
        _tile_zero(C);                                                                                     \
        _tile_loadd(A, wp + (i) * (int64_t)sizeof(block_q8_0), rb);                                        \
        _tile_loadd(B, b + (i) * 16 * QK8_0, 64);                                                          \
        _tile_dpbssd(C, A, B);                                                                             \
        _tile_stored(C, buf, 64);                                                                          \
    } while (0)
#define EPILOGUE(i, buf) epilogue(acc, buf, dw + (i) * 16, _mm512_loadu_ps(dy + (i) * 16))
            TILE_BLOCK(0, 1, 2, 0, sums[0]);
            int64_t i = 1;
            for (; i + 2 <= nb; i += 2) {
                TILE_BLOCK(3, 4, 5, i, sums[1]);
                EPILOGUE(i - 1, sums[0]);
                TILE_BLOCK(0, 1, 2, i + 1, sums[0]);
                EPILOGUE(i, sums[1]);
            }
            if (i < nb) {
                TILE_BLOCK(3, 4, 5, i, sums[1]);
                EPILOGUE(i - 1, sums[0]);
                EPILOGUE(i, sums[1]);
            } else {
                EPILOGUE(i - 1, sums[0]);
            }
#undef TILE_BLOCK
#undef EPILOGUE
            /* acc[r] lane t -> s[t][r]: through the sums buffer, a 16 x 16 transpose (once per row tile and token
             * tile) */
            float *tr = (float *)sums[0];
            for (int r = 0; r < 16; r++) _mm512_store_ps(tr + 16 * r, acc[r]);
            const __m512i column = _mm512_set_epi32(240, 224, 208, 192, 176, 160, 144, 128, 112, 96, 80, 64, 48, 32, 16, 0);
            for (int t = 0; t < 16; t++)
                _mm512_storeu_ps(s + (tt * 16 + t) * ss + 16 * p,
                                 _mm512_i32gather_ps(_mm512_add_epi32(column, _mm512_set1_epi32(t)), tr, 4));
        }
    }
    _tile_release();
}

#endif
