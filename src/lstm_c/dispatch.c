/* dispatch.c - which instruction sets this build and CPU can run, and the kernel table of each: the one
 * place where kernels are chosen (a model picks its table when it is opened). */
#include "kernels.h"
#include "lstm.h"

#ifdef LSTM_HAVE_X86_KERNELS
static int x86_has(lstm_isa isa) {
    __builtin_cpu_init();
    switch (isa) {
    case LSTM_ISA_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case LSTM_ISA_AVX512_VNNI:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
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
    case LSTM_ISA_AVX2: return &lstm_q8_avx2;
    case LSTM_ISA_AVX512_VNNI: return &lstm_q8_avx512_vnni;
#endif
    default: return &lstm_q8_reference;
    }
}
