/* avx2only.c - an LD_PRELOAD shim under which every library in the process sees an x86-64 CPU with AVX2 and
 * FMA but without AVX-512, AVX-VNNI or AMX (AMD Zen 2 / Zen 3, Intel Haswell to Comet Lake): the CPU class of
 * issue 11's "AVX2-only" rows, on a machine that has more. Forcing our own ISA is not enough for those rows:
 * the peers (ONNX Runtime's MLAS, PyTorch and oneDNN, OpenVINO, XNNPACK, ncnn, OpenBLAS, NumPy) would still
 * run their AVX-512 kernels. They all pick their kernels from the CPUID instruction, so this shim turns on
 * Linux's CPUID faulting for the process (arch_prctl(ARCH_SET_CPUID, 0); the CPU flag `cpuid_fault`), and
 * answers each CPUID from its SIGSEGV handler: the real values with these bits cleared:
 *   leaf 7.0  EBX: AVX512F, DQ, IFMA, PF, ER, CD, BW, VL; ECX: VBMI, VBMI2, VNNI, BITALG, VPOPCNTDQ;
 *             EDX: 4VNNIW, 4FMAPS, VP2INTERSECT, AMX-BF16, AVX512-FP16, AMX-TILE, AMX-INT8
 *   leaf 7.1  EAX: AVX-VNNI, AVX512-BF16, AMX-FP16, AVX-IFMA; EDX: AVX-VNNI-INT8
 *   leaf 0xD.0 EAX: the opmask, ZMM and AMX tile state components
 * The setting is per thread and inherited by the threads created after it (thread pools included); execve
 * ends it. Code that ran before the shim's constructor (the dynamic loader's and the C library's own feature
 * checks) keeps what it saw: glibc's string functions may still use their EVEX forms, which only speeds up
 * memcpy alike for every engine. XGETBV is not trapped: it still reports the ZMM state enabled, which is
 * harmless once CPUID denies the instructions.
 *
 * A SIGSEGV handler that a program installs later (Python's faulthandler, a JIT) is kept behind ours:
 * sigaction() and signal() are wrapped so that ours stays first and passes every fault that is not a CPUID
 * on to it.
 *
 *     cc -shared -fPIC -O2 tools/avx2only.c -o avx2only.so -ldl
 *     LD_PRELOAD=$PWD/avx2only.so python tools/bench.py ...       (tools/bench.py --cpu avx2 does this)
 *
 * Without CPUID faulting (a CPU or hypervisor that lacks it) the constructor prints why and exits with
 * status 3: a benchmark must not silently run on the full CPU. */
#define _GNU_SOURCE
#include <cpuid.h>
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define ARCH_SET_CPUID 0x1012

static struct sigaction chained;       /* the program's own SIGSEGV disposition, run for other faults */
static volatile sig_atomic_t installed; /* our handler is in place: sigaction() and signal() chain behind it */

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);

static sigaction_fn real_sigaction(void) {
    static sigaction_fn fn;
    if (!fn) fn = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
    return fn;
}

/* CPUID as this CPU answers it, then the AVX-512, AVX-VNNI and AMX bits cleared (see above). */
static void masked_cpuid(unsigned leaf, unsigned sub, unsigned r[4]) {
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, 1L);
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0L);
    if (leaf == 7 && sub == 0) {
        r[1] &= ~(1u << 16 | 1u << 17 | 1u << 21 | 1u << 26 | 1u << 27 | 1u << 28 | 1u << 30 | 1u << 31);
        r[2] &= ~(1u << 1 | 1u << 6 | 1u << 11 | 1u << 12 | 1u << 14);
        r[3] &= ~(1u << 2 | 1u << 3 | 1u << 8 | 1u << 22 | 1u << 23 | 1u << 24 | 1u << 25);
    } else if (leaf == 7 && sub == 1) {
        r[0] &= ~(1u << 4 | 1u << 5 | 1u << 21 | 1u << 23);
        r[3] &= ~(1u << 4);
    } else if (leaf == 0xd && sub == 0) {
        r[0] &= ~(1u << 5 | 1u << 6 | 1u << 7 | 1u << 17 | 1u << 18);
    }
}

static void on_segv(int sig, siginfo_t *info, void *context) {
    ucontext_t *uc = context;
    greg_t *g = uc->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)g[REG_RIP];
    if (ip[0] == 0x0f && ip[1] == 0xa2) { /* cpuid: answer it and step over the 2 bytes */
        unsigned r[4];
        masked_cpuid((unsigned)g[REG_RAX], (unsigned)g[REG_RCX], r);
        g[REG_RAX] = r[0], g[REG_RBX] = r[1], g[REG_RCX] = r[2], g[REG_RDX] = r[3];
        g[REG_RIP] += 2;
        return;
    }
    if (chained.sa_flags & SA_SIGINFO) {
        chained.sa_sigaction(sig, info, context);
    } else if (chained.sa_handler != SIG_DFL && chained.sa_handler != SIG_IGN) {
        chained.sa_handler(sig);
    } else { /* the default action: the faulting instruction runs again and kills the process as usual */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        real_sigaction()(SIGSEGV, &dfl, NULL);
    }
}

int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    if (sig != SIGSEGV || !installed) return real_sigaction()(sig, act, old);
    struct sigaction before = chained;
    if (act) chained = *act;
    if (old) *old = before;
    return 0;
}

sighandler_t signal(int sig, sighandler_t handler) {
    struct sigaction act, old;
    memset(&act, 0, sizeof act);
    act.sa_handler = handler;
    sigemptyset(&act.sa_mask);
    act.sa_flags = SA_RESTART;
    return sigaction(sig, &act, &old) == 0 ? old.sa_handler : SIG_ERR;
}

__attribute__((constructor)) static void avx2only_init(void) {
    struct sigaction act;
    memset(&act, 0, sizeof act);
    act.sa_sigaction = on_segv;
    act.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&act.sa_mask);
    if (real_sigaction()(SIGSEGV, &act, &chained) != 0) {
        fputs("avx2only.so: cannot install the SIGSEGV handler\n", stderr);
        _exit(3);
    }
    installed = 1;
    if (syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0L) != 0) {
        fputs("avx2only.so: this CPU or hypervisor has no CPUID faulting (arch_prctl(ARCH_SET_CPUID) failed): "
              "the AVX2-only view cannot be made here\n", stderr);
        _exit(3);
    }
}
