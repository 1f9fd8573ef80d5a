/* gemm_tile_bf16_amx.c — gemm_tile_bf16.c's product on AMX-BF16 tiles (Xeons from Sapphire Rapids on): the
 * integer mode's attention blocks and the vocabulary projection's dX.
 *
 * tdpbf16ps multiplies a 16-row x 16-pair tile of A by a 16-pair x 16-column tile of B into 16 x 16 f32 sums, and
 * the contract's layouts are already AMX's: A's pairs run along its rows (a_sp = 1; a transposed A, a_sp != 1, is
 * copied once per call into that order), and B's row pair p is a row of n pairs. Register block: 2 x 2 output
 * tiles (32 x 32) over 2 A and 2 B tiles, so each tile loaded serves two products. The output's whole 16 x 16
 * tiles over whole 16-pair steps go through the tiles; the rest (the last rows, the last columns, the last pairs)
 * through the AVX512-BF16 kernel, added in. f32 sums in another order than the reference's: the tests hold it to
 * the same relative error as the AVX512-BF16 kernel.
 *
 * As in repack_amx.c, the tile configuration is loaded on entry and the tiles released on exit of every call. */
#include "internal.h"

#if defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(__AVX512BF16__) && defined(__AVX512F__)
#include "amx_tiles.h"

#define KT 16          /* pairs per tile step */
#define AT_MAX 8192    /* a transposed A is copied when its whole tiles fit in this many pairs (32 KB, the stack) */

/* tiles 0, 1: A (16 rows x 16 pairs); 2, 3: B (16 pairs x 16 columns); 4..7: C, one per (A, B) */
static void load_config(void) {
    static const uint8_t rows[8] = {16, 16, 16, 16, 16, 16, 16, 16};
    static const uint16_t colsb[8] = {64, 64, 64, 64, 64, 64, 64, 64};
    ckls_tiles_configure(rows, colsb);
}

/* C[16 x 16] (=|+=) alpha * the sums in buf */
static void write_tile(const float *buf, float *C, int64_t ldc, __m512 va, int accumulate) {
    for (int r = 0; r < 16; r++) {
        __m512 y = _mm512_mul_ps(va, _mm512_load_ps(buf + 16 * r));
        if (accumulate) y = _mm512_add_ps(_mm512_loadu_ps(C + r * ldc), y);
        _mm512_storeu_ps(C + r * ldc, y);
    }
}

void ckls_gemm_tile_bf16_amx(int64_t m, int64_t n, int64_t kp, float alpha, const uint32_t *A, int64_t a_si,
                             int64_t a_sp, const uint32_t *B, int64_t ldb, int accumulate, float *C, int64_t ldc) {
    const int64_t m16 = m / 16 * 16, n16 = n / 16 * 16, k16 = kp / KT * KT;
    if (!m16 || !n16 || !k16 || (a_sp != 1 && m16 * k16 > AT_MAX)) {
        ckls_gemm_tile_bf16_avx512bf16(m, n, kp, alpha, A, a_si, a_sp, B, ldb, accumulate, C, ldc);
        return;
    }
    uint32_t at[AT_MAX];
    const uint32_t *a = A;
    int64_t lda = a_si;
    if (a_sp != 1) { /* pairs along the rows */
        for (int64_t i = 0; i < m16; i++)
            for (int64_t p = 0; p < k16; p++) at[i * k16 + p] = A[i * a_si + p * a_sp];
        a = at;
        lda = k16;
    }
    float buf[4][256] __attribute__((aligned(64)));
    const __m512 va = _mm512_set1_ps(alpha);
    load_config();
    for (int64_t i0 = 0; i0 < m16; i0 += 32)
        for (int64_t j0 = 0; j0 < n16; j0 += 32) {
            const int two_i = i0 + 32 <= m16, two_j = j0 + 32 <= n16;
            _tile_zero(4);
            _tile_zero(5);
            _tile_zero(6);
            _tile_zero(7);
            for (int64_t p = 0; p < k16; p += KT) {
                _tile_loadd(0, a + i0 * lda + p, lda * 4);
                _tile_loadd(2, B + p * ldb + j0, ldb * 4);
                _tile_dpbf16ps(4, 0, 2);
                if (two_j) {
                    _tile_loadd(3, B + p * ldb + j0 + 16, ldb * 4);
                    _tile_dpbf16ps(5, 0, 3);
                }
                if (two_i) {
                    _tile_loadd(1, a + (i0 + 16) * lda + p, lda * 4);
                    _tile_dpbf16ps(6, 1, 2);
                    if (two_j) _tile_dpbf16ps(7, 1, 3);
                }
            }
            _tile_stored(4, buf[0], 64);
            _tile_stored(5, buf[1], 64);
            _tile_stored(6, buf[2], 64);
            _tile_stored(7, buf[3], 64);
            write_tile(buf[0], C + i0 * ldc + j0, ldc, va, accumulate);
            if (two_j) write_tile(buf[1], C + i0 * ldc + j0 + 16, ldc, va, accumulate);
            if (two_i) write_tile(buf[2], C + (i0 + 16) * ldc + j0, ldc, va, accumulate);
            if (two_i && two_j) write_tile(buf[3], C + (i0 + 16) * ldc + j0 + 16, ldc, va, accumulate);
        }
    _tile_release();
    if (k16 < kp) /* the last pairs of the tiled part, added in */
        ckls_gemm_tile_bf16_avx512bf16(m16, n16, kp - k16, alpha, A + k16 * a_sp, a_si, a_sp, B + k16 * ldb, ldb, 1,
                                       C, ldc);
    if (n16 < n) /* the last columns of those rows */
        ckls_gemm_tile_bf16_avx512bf16(m16, n - n16, kp, alpha, A, a_si, a_sp, B + n16, ldb, accumulate, C + n16, ldc);
    if (m16 < m) /* the last rows */
        ckls_gemm_tile_bf16_avx512bf16(m - m16, n, kp, alpha, A + m16 * a_si, a_si, a_sp, B, ldb, accumulate,
                                       C + m16 * ldc, ldc);
}

#endif
