/*
 * lstm_format.h - the model file and snapshot layouts: the one place their constants are defined.
 * The C reader (format.c) and the Python writer (lstm_embed/format.py, through the Cython binding) both
 * take every offset and code from here. docs/format.md describes the same layout in prose.
 *
 * All integers little-endian. A model file is:
 *   [0, 128)                 fixed header (offsets below)
 *   [128, header_size)       tensor table: tensor_count entries of 32 bytes
 *   ...                      tensors, each at an offset that is a multiple of 64, zero padding between
 * The CRC32 (IEEE 802.3, as zlib.crc32) covers bytes [0, file_size) with the CRC field itself read as 0.
 */
#ifndef LSTM_FORMAT_H
#define LSTM_FORMAT_H

#define LSTM_FILE_MAGIC "LSTMEMB\0"          /* 8 bytes */
#define LSTM_FILE_MAGIC_LEN 8
/* Format versions: 1 (lstm_embed 0.1-0.2) stored fp32 layer weights row-major (F32); 2 (0.3 on) stores them
 * as packed panels (F32_PANELS). Readers accept only LSTM_FORMAT_VERSION: a version-1 file is refused with
 * LSTM_E_UNSUPPORTED_VERSION (convert the model again; the Python API says so). */
#define LSTM_FORMAT_VERSION 2
#define LSTM_TENSOR_ALIGN 64

/* fixed header: byte offsets of each field (u32 unless noted) */
#define LSTM_HDR_MAGIC 0              /* 8 bytes */
#define LSTM_HDR_VERSION 8
#define LSTM_HDR_HEADER_SIZE 12       /* 128 + 32 * tensor_count */
#define LSTM_HDR_FILE_SIZE 16         /* u64 */
#define LSTM_HDR_CRC32 24
#define LSTM_HDR_FLAGS 28             /* reserved, must be 0 */
#define LSTM_HDR_FINGERPRINT 32       /* u64 */
#define LSTM_HDR_INPUT_SIZE 40
#define LSTM_HDR_HIDDEN_SIZE 44
#define LSTM_HDR_PROJ_SIZE 48         /* 0 = no projection; else 1 .. hidden_size-1 */
#define LSTM_HDR_NUM_LAYERS 52        /* 1 .. LSTM_MAX_LAYERS */
#define LSTM_HDR_NUM_DIRECTIONS 56    /* 1 or 2 */
#define LSTM_HDR_HEAD_SIZE 60         /* 0 = no dense head */
#define LSTM_HDR_HEAD_ACTIVATION 64   /* lstm_activation; 0 when there is no head */
#define LSTM_HDR_TENSOR_COUNT 68
#define LSTM_HDR_LAYER_DTYPES 72      /* u8[LSTM_MAX_LAYERS]: lstm_layer_dtype per layer, unused = 0 */
#define LSTM_HDR_RESERVED 88          /* zero up to LSTM_HDR_SIZE */
#define LSTM_HDR_SIZE 128

/* tensor table entry: byte offsets within the 32-byte entry */
#define LSTM_TENSOR_ENTRY_SIZE 32
#define LSTM_TENSOR_ROLE 0            /* lstm_tensor_role */
#define LSTM_TENSOR_INDEX 4           /* layer * 2 + direction for layer tensors; 0 for head tensors */
#define LSTM_TENSOR_DTYPE 8           /* lstm_tensor_dtype */
#define LSTM_TENSOR_ROWS 12
#define LSTM_TENSOR_COLS 16
#define LSTM_TENSOR_RESERVED 20       /* must be 0 */
#define LSTM_TENSOR_OFFSET 24         /* u64, from the start of the file, multiple of 64 */
#define LSTM_MAX_TENSORS 256

/* Tensor roles and their shapes (H = hidden, Hr = proj or hidden, in_l = input_size for layer 0 and
 * Hr * num_directions above it, D = num_directions, r4(n) = n rounded up to a multiple of 4):
 *   WEIGHT      fp32 layer: F32_PANELS [4H, in_l + Hr], columns [W_ih | W_hh], rows in gate order i, f, g, o
 *               int8 layer: I8_BLOCKED [4H, r4(in_l) + r4(Hr)], columns [W_ih, zero pad | W_hh, zero pad]
 *   BIAS        F32 [4H, 1]          b_ih + b_hh
 *   PROJ        F32_PANELS [P, H], or I8_BLOCKED [P, r4(H)] in an int8 layer (only when proj_size > 0)
 *   HEAD_W      F32 [head, Hr * D]   dense head weight (only when head_size > 0)
 *   HEAD_B      F32 [head, 1]        dense head bias
 *   W_SCALE     F32 [2, 4H]          int8 layers: per row, the scale of the W_ih part, then of the W_hh
 *                                    part (weight = scale * int8 value)
 *   W_ROWSUM    I32 [2, 4H]          int8 layers: per row, sum of the int8 W_ih part, then of the W_hh part
 *   PROJ_SCALE  F32 [P, 1]           int8 layers with a projection
 *   QPARAMS     I32 [5, 4H]          int16x8 layers: per row M_x, S_x, M_h, S_h, B (docs/int16x8.md)
 *   HEAD_QPARAMS I32 [3, head]       integer-only models with a head: per row M_y, S_y, B_y; their HEAD_W
 *                                    is I8_BLOCKED [head, r4(H)] (per-row int8, scales folded into M_y)
 *   IO_SCALES   F32 [1, 4]           integer-only models (index 0): input_scale, inv_input_scale,
 *                                    output_scale, 0 */
enum lstm_tensor_role {
    LSTM_ROLE_WEIGHT = 1,
    LSTM_ROLE_BIAS = 2,
    LSTM_ROLE_PROJ = 3,
    LSTM_ROLE_HEAD_W = 4,
    LSTM_ROLE_HEAD_B = 5,
    LSTM_ROLE_W_SCALE = 6,
    LSTM_ROLE_W_ROWSUM = 7,
    LSTM_ROLE_PROJ_SCALE = 8,
    LSTM_ROLE_QPARAMS = 9,
    LSTM_ROLE_HEAD_QPARAMS = 10,
    LSTM_ROLE_IO_SCALES = 11
};
#define LSTM_ROLE_COUNT 11
/* Rows of a QPARAMS tensor and of a HEAD_QPARAMS tensor (docs/int16x8.md). */
#define LSTM_QP_MX 0
#define LSTM_QP_SX 1
#define LSTM_QP_MH 2
#define LSTM_QP_SH 3
#define LSTM_QP_B 4
#define LSTM_QP_ROWS 5
#define LSTM_HQP_M 0
#define LSTM_HQP_S 1
#define LSTM_HQP_B 2
#define LSTM_HQP_ROWS 3
/* Columns of IO_SCALES. */
#define LSTM_IO_INPUT_SCALE 0
#define LSTM_IO_INV_INPUT_SCALE 1
#define LSTM_IO_OUTPUT_SCALE 2
#define LSTM_IO_COLS 4
/* Integer-only models: widest r4(input_size), hidden_size and head_size (every sum stays in int32). */
#define LSTM_INT_MAX_WIDTH 512
/* QPARAMS and HEAD_QPARAMS values: 0 <= M < 2^31, 1 <= S <= 62, |B| <= LSTM_INT_MAX_ABS_BIAS (2^29). */
#define LSTM_INT_MAX_SHIFT 62
#define LSTM_INT_MAX_ABS_BIAS 536870912

/* I8_BLOCKED: a [rows, cols] int8 matrix (cols a multiple of 4) stored as blocks of 16 rows x 4 columns,
 * 64 bytes each, block (p, g) at byte (p * cols / 4 + g) * 64, element (r, k) at byte 4 * (r % 16) + k % 4
 * of block (r / 16, k / 4). Rows past `rows` up to a multiple of 16 are zero. Size: r16(rows) * cols.
 * F32: a row-major [rows, cols] float32 matrix (biases, scales, the dense head).
 * F32_PANELS: a [rows, cols] float32 matrix stored as panels of 16 rows, each panel column after column
 * (k-major): element (r, k) at float (r / 16) * cols * 16 + k * 16 + r % 16. Rows past `rows` up to a
 * multiple of 16 are zero. Size: r16(rows) * cols * 4 bytes. The fp32 kernels read one panel column (16
 * rows, 64 bytes) per k into one AVX-512 register, two AVX2 or four NEON ones. */
enum lstm_tensor_dtype {
    LSTM_DTYPE_F32 = 1,
    LSTM_DTYPE_I8_BLOCKED = 2,
    LSTM_DTYPE_I32 = 3,
    LSTM_DTYPE_F32_PANELS = 4
};
#define LSTM_F32_PANEL_ROWS 16
#define LSTM_Q8_BLOCK_ROWS 16
#define LSTM_Q8_BLOCK_COLS 4

/* Upper bound on every size field: keeps all size arithmetic far from overflow. */
#define LSTM_MAX_DIM 65536

/* Snapshot: magic, version, model fingerprint, then h and c of every layer (float32), then CRC32. */
#define LSTM_SNAPSHOT_MAGIC "LSTMSNP\0"
#define LSTM_SNAPSHOT_VERSION 1
#define LSTM_SNAP_MAGIC 0             /* 8 bytes */
#define LSTM_SNAP_VERSION 8           /* u32 */
#define LSTM_SNAP_FLOATS 12           /* u32: number of floats that follow the header */
#define LSTM_SNAP_FINGERPRINT 16      /* u64 */
#define LSTM_SNAP_HEADER_SIZE 24      /* floats follow; a u32 CRC32 of everything before it ends the blob */

#endif /* LSTM_FORMAT_H */
