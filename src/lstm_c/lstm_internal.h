/* lstm_internal.h - private structures shared by the C core's files. Not installed, not public. */
#ifndef LSTM_INTERNAL_H
#define LSTM_INTERNAL_H

#include "lstm.h"
#include "kernels.h"

#define LSTM_MODEL_MAGIC 0x4c53544dU /* "LSTM" */
#define LSTM_STATE_MAGIC 0x53544154U /* "STAT" */
#define LSTM_ALIGN 64                /* alignment of the state and workspace areas */
/* |c| never exceeds 2^25: c' = f c + i g with f, i in [0, 1] and |g| <= 1 adds at most 1 per step, and from
 * 2^25 up the float spacing (4) is too coarse for that 1 to change c. */
#define LSTM_MAX_ABS_CELL 33554432.0f

/* One direction of one layer: pointers into the caller's model bytes. */
typedef struct lstm_cell {
    uint32_t dtype;     /* lstm_layer_dtype */
    uint32_t in;        /* input width of this layer */
    const float *b;     /* [4H]: b_ih + b_hh */
    /* fp32 layers */
    const float *w;     /* [4H][in + Hr]: [W_ih | W_hh], gate order i, f, g, o */
    uint32_t ld;        /* row stride of w: in + Hr */
    const float *w_hr;  /* [P][H], or NULL */
    /* int8 layers: blocked matrices (kernels.h) */
    const int8_t *wq;   /* [4H][r4(in) + r4(Hr)] */
    const float *wscale;/* [2][4H]: W_ih part, W_hh part */
    const int32_t *rowsum; /* [2][4H]: W_ih part, W_hh part */
    uint32_t gx, gh;    /* column groups of the W_ih and W_hh parts */
    const int8_t *hrq;  /* [P][r4(H)], or NULL */
    const float *hr_scale; /* [P] */
    /* int16x8 layers (the int8 tensors above, plus): */
    const int32_t *qp;  /* [5][4H]: M_x, S_x, M_h, S_h, B (lstm_format.h LSTM_QP_*) */
} lstm_cell;

struct lstm_model {
    uint32_t magic;
    void *allocation;            /* the malloc block of lstm_model_open, or NULL */
    float h_limit;               /* largest |h| a state can hold: 1, or the projection's bound */
    lstm_model_info info;
    uint32_t hr;                 /* width of h: proj_size or hidden_size */
    uint32_t layer_out;          /* hr * num_directions: width of a layer's output */
    lstm_cell cells[LSTM_MAX_LAYERS][2];
    const float *head_w;         /* [head][layer_out] or NULL */
    const float *head_b;         /* [head] */
    /* integer-only (int16x8) models */
    uint32_t is_int;             /* 1 when every layer is int16x8 (then the fields below are set) */
    const int8_t *head_wq;       /* [head][r4(H)] I8_BLOCKED, or NULL */
    const int32_t *head_qp;      /* [3][head]: M_y, S_y, B_y (LSTM_HQP_*) */
    const float *io_scales;      /* [4]: input_scale, inv_input_scale, output_scale, 0 (LSTM_IO_*) */
    const lstm_kernels *kern;    /* kernels of info.isa */
    /* state layout: h then c from the state's data start, then (full states only) the scratch of a step */
    size_t persist_floats;       /* h then c, for every layer and direction: what a snapshot holds */
    size_t scratch_floats;       /* the scratch of one step; offsets below are from its start */
    size_t off_xh;               /* scratch: [r4(in) + r4(Hr)] input and h, side by side */
    size_t off_gates;            /* scratch: [4H] */
    size_t off_hfull;            /* scratch: [H] o * tanh(c), before projection */
    size_t q_width;              /* widest vector the int8-dynamic path quantises: max(in, Hr) */
    size_t q_bytes;              /* bytes per quantised value: 1 (int8-dynamic), 2 (int8-a16), 0 (neither) */
    size_t acc_words;            /* 32-bit words per exact sum: 1 (int32), 2 (int64, int8-a16), 0 */
    size_t off_q;                /* scratch: two quantised vectors of r4(q_width) values, q_bytes each */
    size_t off_acc;              /* scratch: two sum vectors of r16(4H) values, acc_words each */
    size_t off_int;              /* scratch (int16x8 models): the integer step's area, lstm_int_scratch */
    size_t state_floats;         /* a full state: r16(persist_floats) + scratch_floats */
};

/* The integer step's scratch (int16x8 models), from scratch + off_int, each part 64-byte aligned:
 *   int16 xq[r16(r4(widest input))]  the layer's input (layer 0: x; above: the new h below), zero-padded
 *   int16 hq[r16(r4(H))]             the layer's previous h (the top layer's new h for the head)
 *   int16 gq[r16(4H)]                the gate activations i, f, g, o of the last layer stepped
 *   int64 ax[r16(max(4H, head))]     exact sums of the W_ih part (the head's sums)
 *   int64 ah[r16(4H)]                exact sums of the W_hh part
 *   int16 yq[r16(output)]            the integer output of the float entry points
 *   int32 z[r16(head)], uint32 e[r16(head)]  the softmax's pre-activations and exponentials */
typedef struct lstm_int_scratch {
    int16_t *xq, *hq, *gq;
    int64_t *ax, *ah;
    int16_t *yq;  /* [output_size]: the float entry points' integer output */
    int32_t *z;   /* [head]: the softmax's pre-activations */
    uint32_t *e;  /* [head]: its exponentials */
} lstm_int_scratch;
/* int_step.c: the scratch's size and parts; the step in pieces (the float entry points and the trace use
 * them; docs/int16x8.md). `data` is the state's h and c as int32 words. */
size_t lstm_int_scratch_floats(const lstm_model *m);
lstm_int_scratch lstm_int_scratch_at(const lstm_model *m, float *scratch);
/* x[input_size] into sc->xq, zero-padded (x may be sc->xq itself). */
void lstm_int_load_input(const lstm_model *m, const int16_t *x, const lstm_int_scratch *sc);
/* Layer l over the input in sc->xq: h and c of layer l updated, sc->gq holds its gates i, f, g, o, and
 * sc->xq its new h (the next layer's input). */
void lstm_int_layer(const lstm_model *m, uint32_t l, int32_t *data, const lstm_int_scratch *sc);
/* The head (or the top h when there is none) over sc->xq into y[output_size]. */
void lstm_int_head(const lstm_model *m, const lstm_int_scratch *sc, int16_t *y);
/* One whole step: load x, every layer, the head. */
void lstm_int_forward(const lstm_model *m, int32_t *data, const int16_t *x, int16_t *y, float *scratch);
/* int_float.c: one step of an int16x8 model with float x and y (x already checked): x quantised with
 * inv_input_scale, the integer step, y = yq * output_scale; with `trace`, lstm_step_trace's floats. */
void lstm_int_step_float(lstm_state *state, const float *x, float *y, float *scratch, float *trace);

struct lstm_state {
    uint32_t magic;
    uint32_t flags;              /* LSTM_STATE_COMPACT or 0 */
    const lstm_model *model;
    uint64_t fingerprint;
    /* float data starts at lstm_state_header(s) bytes from the state's start */
};

#define LSTM_STATE_COMPACT 1U
#define LSTM_STATE_HEADER 64         /* a full state: data 64-byte aligned */
#define LSTM_COMPACT_HEADER 32       /* a compact state: h and c right after the 24-byte struct */
#define LSTM_COMPACT_ALIGN 8         /* a compact state's buffer alignment (the struct holds a pointer) */

static inline size_t lstm_state_header(const lstm_state *s) {
    return (s->flags & LSTM_STATE_COMPACT) ? LSTM_COMPACT_HEADER : LSTM_STATE_HEADER;
}
static inline float *lstm_state_data(lstm_state *s) {
    return (float *)(void *)((char *)s + lstm_state_header(s));
}
static inline const float *lstm_state_cdata(const lstm_state *s) {
    return (const float *)(const void *)((const char *)s + lstm_state_header(s));
}
/* A full state's own scratch (NULL for a compact state). */
static inline float *lstm_state_scratch(lstm_state *s) {
    return (s->flags & LSTM_STATE_COMPACT) ? NULL : lstm_state_data(s) + lstm_r16(s->model->persist_floats);
}
/* Bytes of caller workspace that hold one step's scratch (aligned inside). */
static inline size_t lstm_scratch_bytes(const lstm_model *m) {
    return (LSTM_ALIGN - 1) + m->scratch_floats * sizeof(float);
}
/* h of layer l, direction d: [Hr]; c follows the block of all h: [H] */
static inline size_t lstm_off_h(const lstm_model *m, uint32_t l, uint32_t d) {
    return ((size_t)l * m->info.num_directions + d) * m->hr;
}
static inline size_t lstm_off_c(const lstm_model *m, uint32_t l, uint32_t d) {
    return (size_t)m->info.num_layers * m->info.num_directions * m->hr
         + ((size_t)l * m->info.num_directions + d) * m->info.hidden_size;
}

/* Checks shared by the entry points. */
lstm_status lstm_check_state(const lstm_state *s);
/* LSTM_OK, LSTM_E_NONFINITE_INPUT (a NaN or infinity) or LSTM_E_INPUT_RANGE (|v| > LSTM_MAX_ABS_INPUT). */
lstm_status lstm_check_input(const float *v, size_t n);
/* The largest |v[i]| as float bits (NaN and infinity sort above every finite value); 0 for n == 0. */
uint32_t lstm_max_abs_bits(const float *v, size_t n);
#define LSTM_FLOAT_INF_BITS 0x7f800000U

/* little-endian field access for the file and snapshot layouts */
static inline uint32_t rd32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t rd64(const unsigned char *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static inline void wr32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static inline void wr64(unsigned char *p, uint64_t v) {
    wr32(p, (uint32_t)v);
    wr32(p + 4, (uint32_t)(v >> 32));
}

uint32_t lstm_crc32(const unsigned char *p, size_t n, uint32_t crc);

static inline void *lstm_align_up(void *p, size_t a) {
    uintptr_t u = (uintptr_t)p;
    return (void *)((u + (a - 1)) & ~(uintptr_t)(a - 1));
}

#endif /* LSTM_INTERNAL_H */
