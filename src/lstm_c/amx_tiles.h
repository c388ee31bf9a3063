/* amx_tiles.h - what the AMX kernels (s8_amx.c, s16_amx.c) share: the LDTILECFG operand and the compiler
 * barrier their tile loads need. */
#ifndef LSTM_AMX_TILES_H
#define LSTM_AMX_TILES_H
#include <stdint.h>

/* The 64-byte operand of LDTILECFG (palette 1). */
typedef struct tile_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

/* GCC's AMX intrinsics are asm statements that do not name the memory they read (LDTILECFG names only the
 * operand's first 8 bytes): a compiler barrier after C code writes what a tile instruction reads (the
 * configuration, split activations, a copied weight tile). */
#define MEMORY_BARRIER() __asm__ __volatile__("" ::: "memory")

#endif /* LSTM_AMX_TILES_H */
