/* dispatch.c - which instruction sets this build and CPU can run, and the kernel table of each: the one
 * place where kernels are chosen (a model picks its table when it is opened). */
#if defined(__linux__) && defined(__x86_64__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1 /* syscall(): the AMX permission request below */
#endif
#include "kernels.h"
#include "lstm.h"

#ifdef LSTM_HAVE_X86_KERNELS
#include "kernels_x86.h"
#endif
#include "kernels_arm.h"

#if defined(LSTM_HAVE_AMX_KERNELS) || defined(LSTM_HAVE_AVX_VNNI_KERNELS)
#include <cpuid.h>
#endif
#ifdef LSTM_HAVE_AMX_KERNELS
#include <sys/syscall.h>
#include <unistd.h>
#endif

#if defined(__linux__) && (defined(LSTM_HAVE_NEON_DOT_KERNELS) || (defined(LSTM_NEON32) && !defined(__ARM_NEON)))
#include <sys/auxv.h>
#define LSTM_ARM_AUXV 1
#ifndef AT_HWCAP
#define AT_HWCAP 16
#endif
#if defined(__aarch64__) && !defined(HWCAP_ASIMDDP)
#define HWCAP_ASIMDDP (1UL << 20)
#endif
#if defined(__arm__) && !defined(HWCAP_NEON)
#define HWCAP_NEON (1UL << 12)
#endif
#endif

/* A table from the name suffixes of its four kernel families: fp32 products, int8 x float products, int8 x
 * int8 products, elementwise kernels (e.g. lstm_f32_gemv_<f32>, lstm_s8_gemv_f32_<s8f> and
 * lstm_s8_gemm_f32_<s8f>, lstm_s8_gemv_<s8>, lstm_quantize_<ew>). */
#define LSTM_TABLE(f32, s8f, s8, ew)                                                                        \
    {lstm_f32_gemv_##f32, lstm_f32_gemm_##f32, lstm_s8_gemv_f32_##s8f, lstm_s8_gemm_f32_##s8f,               \
     lstm_s8_gemv_##s8, lstm_s8_gemm_##s8, lstm_quantize_##ew, lstm_q8_gates_##ew, lstm_cell_update_##ew,      \
     lstm_activate_##ew, LSTM_S16_ENTRIES(s8, ew), LSTM_F32_EW_ENTRIES(ew), lstm_f32_step_cell_##f32}

/* The fused fp32 step (kernels.h) is AVX-512's: elsewhere the engine runs its three kernels. AVX2's, the same
 * design over half-panels, was 0-2% slower at H = 64-256 on an AVX-512 machine (f32_avx512.c). */
#define lstm_f32_step_cell_avx2 NULL
#define lstm_f32_step_cell_ref NULL
#define lstm_f32_step_cell_cblas NULL
#define lstm_f32_step_cell_neon NULL
#define lstm_f32_step_cell_cortex_m NULL

/* int8-a16 entries: the int8 x int16 products named after the table's int8 x int8 suffix (lstm_s16_gemv_<s8>),
 * the int16 quantisation and epilogue after its elementwise one. NEON_DOT shares NEON's (SDOT is int8
 * only: alias below). */
#define LSTM_S16_ENTRIES(s8, ew)                                                                            \
    lstm_s16_gemv_##s8, lstm_s16_gemm_##s8, lstm_quantize16_##ew, lstm_q16_gates_##ew
#define lstm_s16_gemv_neon_dot lstm_s16_gemv_neon
#define lstm_s16_gemm_neon_dot lstm_s16_gemm_neon

/* fp32 layers' elementwise kernels: the precise ones of elementwise_impl.h, except where double is not in
 * hardware (kernels.h: LSTM_F32_FLOAT_ELEMENTWISE) and on the Cortex-M DSP table (whose FPU, if any, is
 * single-precision on the M4 and M33; an M7 with a double FPU too: the scalar form has no precise
 * variant), which keep the float ones. */
#ifdef LSTM_F32_FLOAT_ELEMENTWISE
#define LSTM_F32_EW_ENTRIES(ew) lstm_cell_update_##ew, lstm_activate_##ew
#else
#define LSTM_F32_EW_ENTRIES(ew) lstm_cell_update_f32_##ew, lstm_activate_f32_##ew
#endif
#define lstm_cell_update_f32_cortex_m lstm_cell_update_cortex_m
#define lstm_activate_f32_cortex_m lstm_activate_cortex_m

/* Portable C: the twin of every SIMD table (fp32 in the "mul+add" order of kernels.h). */
static const lstm_kernels reference_kernels = LSTM_TABLE(ref, ref, ref, ref);

#ifdef LSTM_USE_CBLAS
/* fp32 through the linked CBLAS; everything else portable. */
static const lstm_kernels blas_kernels = LSTM_TABLE(cblas, ref, ref, ref);
#endif

#ifdef LSTM_HAVE_X86_KERNELS
static const lstm_kernels avx2_kernels = LSTM_TABLE(avx2, avx2, avx2, avx2);
static const lstm_kernels avx512_kernels = LSTM_TABLE(avx512, avx512, avx512, avx512);
#endif
#ifdef LSTM_HAVE_AVX_VNNI_KERNELS
/* The AVX2 table with the int8 x int8 and int8 x int16 products on AVX-VNNI. */
static const lstm_kernels avx2_vnni_kernels = LSTM_TABLE(avx2, avx2, avx2_vnni, avx2);
#endif
#ifdef LSTM_HAVE_AMX_KERNELS
/* The AVX-512 VNNI table with the batched products (int8 x int8, int8 x int16) on AMX tiles; the
 * one-vector products stay AVX-512 (aliases: AMX gains nothing at n = 1, docs/amx.md). */
#define lstm_s8_gemv_amx lstm_s8_gemv_avx512
#define lstm_s16_gemv_amx lstm_s16_gemv_avx512
static const lstm_kernels amx_kernels = LSTM_TABLE(avx512, avx512, amx, avx512);
#endif

#ifdef LSTM_HAVE_NEON_KERNELS
static const lstm_kernels neon_kernels = LSTM_TABLE(neon, neon, neon, neon);
#endif
#ifdef LSTM_HAVE_NEON_DOT_KERNELS
/* NEON with SDOT for the int8 x int8 products */
static const lstm_kernels neon_dot_kernels = LSTM_TABLE(neon, neon, neon_dot, neon);
#endif
#ifdef LSTM_HAVE_CORTEX_M_DSP_KERNELS
/* SXTB16 + SMLAD for the int8 x int8 products; fp32 products for the scalar FPU when there is one with
 * FMA; the portable int8 x float products (4 rows at a time with 16 sums in FPU registers: 6.9 instructions
 * per weight at H = 64 against 8.05 for the removed row-at-a-time FPU kernel, docs/arm.md); the
 * elementwise kernels in their scalar form (branches, one pass per unit) */
#ifdef LSTM_HAVE_CORTEX_M_FPU_KERNELS
static const lstm_kernels cortex_m_kernels = LSTM_TABLE(cortex_m, ref, cortex_m, cortex_m);
#else
static const lstm_kernels cortex_m_kernels = LSTM_TABLE(ref, ref, cortex_m, cortex_m);
#endif
#endif

#ifdef LSTM_HAVE_NEON_KERNELS
/* aarch64: Advanced SIMD always; SDOT when the CPU says so (Linux: HWCAP_ASIMDDP; elsewhere the build's
 * target). 32-bit ARM: NEON when the build targets it, else when the CPU says so (Linux: HWCAP_NEON). */
static int arm_has(lstm_isa isa) {
    switch (isa) {
    case LSTM_ISA_NEON:
#if defined(__aarch64__) || defined(__ARM_NEON)
        return 1;
#elif defined(LSTM_ARM_AUXV)
        return (getauxval(AT_HWCAP) & HWCAP_NEON) != 0;
#else
        return 0;
#endif
#ifdef LSTM_HAVE_NEON_DOT_KERNELS
    case LSTM_ISA_NEON_DOT:
#if defined(LSTM_ARM_AUXV)
        return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#elif defined(__ARM_FEATURE_DOTPROD)
        return 1;
#else
        return 0;
#endif
#endif
    default: return 0;
    }
}
#endif

#ifdef LSTM_HAVE_AMX_KERNELS
#define LSTM_ARCH_GET_XCOMP_PERM 0x1022
#define LSTM_ARCH_REQ_XCOMP_PERM 0x1023
#define LSTM_XFEATURE_XTILEDATA 18

/* AMX-TILE and AMX-INT8 (CPUID 7.0:EDX bits 24, 25), the tile state enabled by the OS (XCR0 bits 17, 18),
 * and the tile data permitted to this process: Linux raises SIGILL on the first tile instruction until the
 * process has asked (arch_prctl ARCH_REQ_XCOMP_PERM, Linux 5.16+). The request is process-wide, idempotent
 * and made here, never in a step path; where it is refused (older kernel, seccomp, a sigaltstack too small
 * for the larger signal frame) AMX is unsupported. */
static int amx_usable(void) {
    unsigned a, b, c, d, xcr0_lo, xcr0_hi;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !((c >> 27) & 1)) return 0; /* OSXSAVE: XGETBV available */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || ((d >> 24) & 3) != 3) return 0;
    __asm__ __volatile__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    (void)xcr0_hi;
    if (((xcr0_lo >> 17) & 3) != 3) return 0;
    unsigned long permitted = 0;
    if (syscall(SYS_arch_prctl, LSTM_ARCH_GET_XCOMP_PERM, &permitted) == 0 &&
        ((permitted >> LSTM_XFEATURE_XTILEDATA) & 1))
        return 1;
    return syscall(SYS_arch_prctl, LSTM_ARCH_REQ_XCOMP_PERM, LSTM_XFEATURE_XTILEDATA) == 0;
}
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
#ifdef LSTM_HAVE_AMX_KERNELS
    case LSTM_ISA_AMX_INT8: return x86_has(LSTM_ISA_AVX512_VNNI) && amx_usable();
#endif
#ifdef LSTM_HAVE_AVX_VNNI_KERNELS
    case LSTM_ISA_AVX2_VNNI: { /* AVX-VNNI: CPUID 7.1:EAX bit 4 (the OS's YMM state: the avx2 check) */
        unsigned a, b, c, d;
        return x86_has(LSTM_ISA_AVX2) && __get_cpuid_count(7, 1, &a, &b, &c, &d) && ((a >> 4) & 1);
    }
#endif
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
#ifdef LSTM_HAVE_AMX_KERNELS
    case LSTM_ISA_AMX_INT8: return x86_has(isa);
#endif
#ifdef LSTM_HAVE_AVX_VNNI_KERNELS
    case LSTM_ISA_AVX2_VNNI: return x86_has(isa);
#endif
#ifdef LSTM_HAVE_NEON_KERNELS
    case LSTM_ISA_NEON:
    case LSTM_ISA_NEON_DOT: return arm_has(isa);
#endif
#ifdef LSTM_HAVE_CORTEX_M_DSP_KERNELS
    case LSTM_ISA_CORTEX_M_DSP: return 1;
#endif
#ifdef LSTM_USE_CBLAS
    case LSTM_ISA_BLAS: return 1;
#endif
    default: return 0;
    }
}

lstm_isa lstm_isa_best(void) {
    static const lstm_isa order[] = {LSTM_ISA_AMX_INT8, LSTM_ISA_AVX512_VNNI, LSTM_ISA_AVX2_VNNI, LSTM_ISA_AVX2,
                                     LSTM_ISA_NEON_DOT, LSTM_ISA_NEON, LSTM_ISA_CORTEX_M_DSP};
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
    case LSTM_ISA_AMX_INT8: return "amx_int8";
    case LSTM_ISA_AVX2_VNNI: return "avx2_vnni";
    }
    return "unknown";
}

const lstm_kernels *lstm_kernels_for(lstm_isa isa) {
    switch (isa) {
#ifdef LSTM_HAVE_X86_KERNELS
    case LSTM_ISA_AVX2: return &avx2_kernels;
    case LSTM_ISA_AVX512_VNNI: return &avx512_kernels;
#endif
#ifdef LSTM_HAVE_AMX_KERNELS
    case LSTM_ISA_AMX_INT8: return &amx_kernels;
#endif
#ifdef LSTM_HAVE_AVX_VNNI_KERNELS
    case LSTM_ISA_AVX2_VNNI: return &avx2_vnni_kernels;
#endif
#ifdef LSTM_HAVE_NEON_KERNELS
    case LSTM_ISA_NEON: return &neon_kernels;
#endif
#ifdef LSTM_HAVE_NEON_DOT_KERNELS
    case LSTM_ISA_NEON_DOT: return &neon_dot_kernels;
#endif
#ifdef LSTM_HAVE_CORTEX_M_DSP_KERNELS
    case LSTM_ISA_CORTEX_M_DSP: return &cortex_m_kernels;
#endif
#ifdef LSTM_USE_CBLAS
    case LSTM_ISA_BLAS: return &blas_kernels;
#endif
    default: return &reference_kernels;
    }
}
