#!/bin/sh
# arm_check.sh - the C tests (tests/c) on ARM under qemu user mode, and the Cortex-M4 int8 check under
# qemu-system-arm:
#   aarch64  built statically with aarch64-linux-gnu-gcc, run with qemu-aarch64 -cpu max (NEON + dot
#            product: tables reference, neon, neon_dot) and -cpu cortex-a53 (ARMv8.0: reference, neon)
#   armhf    built statically with arm-linux-gnueabihf-gcc (baseline ARMv7-A VFP build; NEON chosen at run
#            time from HWCAP), run with qemu-arm -cpu max (NEON) and -cpu cortex-r5f (VFP, no NEON: the
#            detection must keep to the portable table)
#   cortex-m4, cortex-m7  tools/cortex_m4/run.sh: bare-metal firmware running test_isa on qemu-system-arm
#            -M mps2-an386 (Cortex-M4F) and -M mps2-an500 (Cortex-M7): the DSP table's kernels and fp32 /
#            int8 / int8-dynamic models against the reference
# test_isa is the ISA bit-identity program: its table (fp32 within rounding, int8 and int8-dynamic bit for
# bit, per ISA) is printed for every run. Prints a table built / ran / passed; exit status 1 if anything
# failed. Every qemu run is bounded by `timeout`.
#
#   tools/arm_check.sh [build-dir]        (default /tmp/lstm_arm_check)
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-/tmp/lstm_arm_check}
TIMEOUT=${ARM_CHECK_TIMEOUT:-600}
mkdir -p "$OUT"
RESULTS="$OUT/results.txt"
: > "$RESULTS"
status=0

# build <name> <compiler>: the Makefile's none configuration, static, into $OUT/<name>
build() {
    log="$OUT/$1.build.log"
    if make -C "$ROOT/tests/c" all CONFIG=none CC="$2 -static" BUILD_ROOT="$OUT/$1" -j2 > "$log" 2>&1; then
        echo yes
    else
        echo "NO (see $log)" >&2
        echo no
    fi
}

# run <name> <qemu> <cpu> <built>: every test program; one line per program
run() {
    name=$1 qemu=$2 cpu=$3 built=$4
    for t in "$ROOT"/tests/c/test_*.c; do
        prog=$(basename "$t" .c)
        bin="$OUT/$name/none/$prog"
        if [ "$built" != yes ] || [ ! -x "$bin" ]; then
            printf '%-9s %-11s %-15s %-6s %-4s %s\n' "$name" "$cpu" "$prog" no no no >> "$RESULTS"
            status=1
            continue
        fi
        log="$OUT/$name.$cpu.$prog.log"
        timeout "$TIMEOUT" "$qemu" -cpu "$cpu" "$bin" > "$log" 2>&1
        rc=$?
        ran=yes
        [ $rc -eq 124 ] && ran=timeout
        summary=$(tail -n 1 "$log")
        if [ $rc -eq 0 ]; then passed="yes ($summary)"; else passed="NO ($summary, exit $rc)"; status=1; fi
        printf '%-9s %-11s %-15s %-6s %-4s %s\n' "$name" "$cpu" "$prog" yes "$ran" "$passed" >> "$RESULTS"
        if [ "$prog" = test_isa ]; then
            echo "== ISA bit identity, $name, qemu -cpu $cpu"
            sed -n '/^ISAs:/p;/^isa /,/^[0-9]* passed/p' "$log" | grep -v passed
        fi
    done
}

a64=$(build aarch64 aarch64-linux-gnu-gcc)
run aarch64 qemu-aarch64 max "$a64"
run aarch64 qemu-aarch64 cortex-a53 "$a64"
hf=$(build armhf arm-linux-gnueabihf-gcc)
run armhf qemu-arm max "$hf"
run armhf qemu-arm cortex-r5f "$hf"

# cortex_m <cpu> <machine>: the firmware running test_isa (DSP table against the reference)
cortex_m() {
    echo "== ISA bit identity, $1 (qemu-system-arm -M $2)"
    log="$OUT/$1.log"
    if CORTEX_M_CPU=$1 "$ROOT/tools/cortex_m4/run.sh" "$OUT/$1" > "$log" 2>&1; then
        printf '%-9s %-11s %-15s %-6s %-4s %s\n' "$1" "$2" test_isa+panels yes yes "yes ($(tail -n 1 "$log"))" >> "$RESULTS"
    else
        printf '%-9s %-11s %-15s %-6s %-4s %s\n' "$1" "$2" test_isa+panels "?" "?" "NO (see $log)" >> "$RESULTS"
        status=1
    fi
    sed -n '/^ISAs:/p;/^isa /,/passed/p' "$log" | grep -v passed
}
cortex_m cortex-m4 mps2-an386
cortex_m cortex-m7 mps2-an500

echo
printf '%-9s %-11s %-15s %-6s %-4s %s\n' target qemu-cpu program built ran passed
cat "$RESULTS"
exit $status
