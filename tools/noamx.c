/* noamx.c - an LD_PRELOAD shim that refuses the Linux AMX permission request, so that every library in the
 * process that asks before using AMX tiles (ONNX Runtime's MLAS, oneDNN in PyTorch and OpenVINO, our
 * amx_int8 kernels) falls back to its AVX-512 / AVX2 code: the process then runs as on a CPU without AMX
 * (Ice Lake, Cascade Lake, AMD Zen 4). Linux needs arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)
 * before a process's first AMX instruction; libraries make it through syscall(), which this replaces:
 * that one request fails with EPERM, every other call goes to the C library's syscall().
 *
 *     cc -shared -fPIC -O2 tools/noamx.c -o noamx.so -ldl
 *     LD_PRELOAD=$PWD/noamx.so python tools/bench.py ...        (tools/bench.py --no-amx does this) */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/syscall.h>

#define ARCH_REQ_XCOMP_PERM 0x1023

long syscall(long number, ...) {
    va_list ap;
    long a[6];
    va_start(ap, number);
    for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long); /* syscall() takes at most 6 arguments */
    va_end(ap);
#ifdef SYS_arch_prctl
    if (number == SYS_arch_prctl && a[0] == ARCH_REQ_XCOMP_PERM) {
        errno = EPERM;
        return -1;
    }
#endif
    long (*real)(long, ...) = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
    return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
