/* dispatch.c - which instruction sets this build and CPU can run, and the kernel table of each: the one
 * place where kernels are chosen (a model picks its table when it is opened). */
#include "kernels.h"
#include "lstm.h"

#ifdef LSTM_HAVE_X86_KERNELS
#include "kernels_x86.h"
#endif

/* Portable C: the twin of every SIMD table, and the canonical fp32 order (kernels.h). */
static const lstm_kernels reference_kernels = {
    lstm_f32_gemv_canonical, lstm_f32_gemm_canonical, lstm_s8_gemv_f32_ref, lstm_s8_gemv_ref, lstm_s8_gemm_ref,
    lstm_quantize_ref, lstm_q8_gates_ref, lstm_cell_update_ref, lstm_activate_ref};

#ifdef LSTM_USE_CBLAS
/* fp32 through the linked CBLAS; everything else portable. */
static const lstm_kernels blas_kernels = {
    lstm_f32_gemv_cblas, lstm_f32_gemm_cblas, lstm_s8_gemv_f32_ref, lstm_s8_gemv_ref, lstm_s8_gemm_ref,
    lstm_quantize_ref, lstm_q8_gates_ref, lstm_cell_update_ref, lstm_activate_ref};
#endif

#ifdef LSTM_HAVE_X86_KERNELS
#define LSTM_ISA_TABLE(isa)                                                                                 \
    {lstm_f32_gemv_##isa, lstm_f32_gemm_##isa, lstm_s8_gemv_f32_##isa, lstm_s8_gemv_##isa, lstm_s8_gemm_##isa, \
     lstm_quantize_##isa, lstm_q8_gates_##isa, lstm_cell_update_##isa, lstm_activate_##isa}
static const lstm_kernels avx2_kernels = LSTM_ISA_TABLE(avx2);
static const lstm_kernels avx512_kernels = LSTM_ISA_TABLE(avx512);
#endif

#ifdef LSTM_HAVE_X86_KERNELS
static int x86_has(lstm_isa isa) {
    __builtin_cpu_init();
    switch (isa) {
    case LSTM_ISA_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case LSTM_ISA_AVX512_VNNI:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512vnni");
    default: return 0;
    }
}
#endif

int lstm_isa_supported(lstm_isa isa) {
    switch (isa) {
    case LSTM_ISA_AUTO:
    case LSTM_ISA_REFERENCE: return 1;
#ifdef LSTM_HAVE_X86_KERNELS
    case LSTM_ISA_AVX2:
    case LSTM_ISA_AVX512_VNNI: return x86_has(isa);
#endif
#ifdef LSTM_USE_CBLAS
    case LSTM_ISA_BLAS: return 1;
#endif
    default: return 0;
    }
}

lstm_isa lstm_isa_best(void) {
    static const lstm_isa order[] = {LSTM_ISA_AVX512_VNNI, LSTM_ISA_AVX2};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (lstm_isa_supported(order[i])) return order[i];
    return LSTM_ISA_REFERENCE;
}

const char *lstm_isa_name(lstm_isa isa) {
    switch (isa) {
    case LSTM_ISA_AUTO: return "auto";
    case LSTM_ISA_REFERENCE: return "reference";
    case LSTM_ISA_AVX2: return "avx2";
    case LSTM_ISA_AVX512_VNNI: return "avx512_vnni";
    case LSTM_ISA_NEON: return "neon";
    case LSTM_ISA_NEON_DOT: return "neon_dot";
    case LSTM_ISA_CORTEX_M_DSP: return "cortex_m_dsp";
    case LSTM_ISA_BLAS: return "blas";
    }
    return "unknown";
}

const lstm_kernels *lstm_kernels_for(lstm_isa isa) {
    switch (isa) {
#ifdef LSTM_HAVE_X86_KERNELS
    case LSTM_ISA_AVX2: return &avx2_kernels;
    case LSTM_ISA_AVX512_VNNI: return &avx512_kernels;
#endif
#ifdef LSTM_USE_CBLAS
    case LSTM_ISA_BLAS: return &blas_kernels;
#endif
    default: return &reference_kernels;
    }
}
