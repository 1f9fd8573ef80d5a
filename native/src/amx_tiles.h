/* amx_tiles.h — the AMX tile configuration the tile kernels (repack_amx.c, gemm_tile_bf16_amx.c) load on entry to
 * each call: palette 1, tile t with rows[t] rows of colsb[t] bytes (0 rows: unused). Included only by files built
 * with AMX-TILE. */
#ifndef CKLS_AMX_TILES_H
#define CKLS_AMX_TILES_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} ckls_tile_config;

static inline void ckls_tiles_configure(const uint8_t rows[8], const uint16_t colsb[8]) {
    ckls_tile_config c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int t = 0; t < 8; t++) c.rows[t] = rows[t], c.colsb[t] = colsb[t];
    _tile_loadconfig(&c);
}

#endif
