#!/usr/bin/env bash
# .ci/softfloat_check.sh - proves from the link that the integer step of int16x8 models (lstm_step_int,
# docs/int16x8.md) needs no floating point on a core without an FPU.
#
#   .ci/softfloat_check.sh              check: exit 0 when the linked step path has no soft-float routine,
#                                       1 when it has one (each named, with who pulled it in), 2 when the
#                                       toolchain is missing
#   .ci/softfloat_check.sh --self-test  the same check with entry lstm_step (the float path of every model):
#                                       it must report soft-float routines (exit 0 when it does, 1 if not)
#   CPU="-mcpu=cortex-m3 -mthumb" .ci/softfloat_check.sh   another FPU-less core (default Cortex-M0)
#   LSTM_SRC_DIR=/path .ci/softfloat_check.sh              another copy of src/lstm_c
#
# How: every src/lstm_c/*.c is compiled for the core (soft-float ABI, -Os, one section per function) and
# linked with -nostartfiles -nostdlib -Wl,--gc-sections and the step as the entry point, so the ELF holds
# exactly what lstm_step_int can reach. The step calls its product kernel through the model's table
# pointer, which the linker cannot follow: -Wl,-u keeps the gemv_s16 kernel of the table this core uses
# (lstm_s16_gemv_cortex_m on a core with the DSP extension, else lstm_s16_gemv_ref). newlib's libc
# (memcpy, memset) and libgcc (64-bit multiply and shifts, unsigned division) resolve the rest. Every
# symbol of the ELF is then matched against the soft-float routines of libgcc (__aeabi_f*, __aeabi_d*,
# __aeabi_cf*/cd*, __aeabi_[u]i2f/l2f/..., __addsf3, __mulsf3, __divsf3, __*df*, __*sf*, __fix*,
# __float*, half-float conversions). Output under build/softfloat/: the ELF, its map file (the "Archive
# member included ... (symbol)" lines name who pulled each routine in) and the symbol list.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
SRC=${LSTM_SRC_DIR:-$ROOT/src/lstm_c}
OUT=$ROOT/build/softfloat
CPU=${CPU:--mcpu=cortex-m0 -mthumb -mfloat-abi=soft}
CC=arm-none-eabi-gcc
ENTRY=lstm_step_int
SELF_TEST=0
case "${1:-}" in
    --self-test) SELF_TEST=1; ENTRY=lstm_step ;;
    "") ;;
    *) echo "usage: $0 [--self-test]" >&2; exit 2 ;;
esac

if ! command -v "$CC" >/dev/null 2>&1; then
    echo "softfloat_check: $CC not found; install it with:" >&2
    echo "    sudo apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi" >&2
    exit 2
fi

mkdir -p "$OUT/obj"
CFLAGS=($CPU -Os -std=c99 -ffp-contract=off -fno-math-errno -fno-trapping-math -ffunction-sections
        -fdata-sections -Wall -Wextra -I"$SRC")
objs=()
for src in "$SRC"/*.c; do
    obj=$OUT/obj/$(basename "${src%.c}").o
    if ! "$CC" "${CFLAGS[@]}" -c "$src" -o "$obj"; then
        echo "softfloat_check: FAILED to compile $src" >&2
        exit 1
    fi
    objs+=("$obj")
done

# The gemv_s16 kernel of the table this core's build uses (dispatch.c, kernels_arm.h).
if echo '#include "kernels_arm.h"' | "$CC" $CPU -I"$SRC" -dM -E -x c - | grep -q LSTM_HAVE_CORTEX_M_DSP_KERNELS; then
    KERNEL=lstm_s16_gemv_cortex_m
else
    KERNEL=lstm_s16_gemv_ref
fi

tag=$([ $SELF_TEST = 1 ] && echo selftest || echo step)
ELF=$OUT/$tag.elf MAP=$OUT/$tag.map SYMS=$OUT/$tag.syms
if ! "$CC" $CPU -nostartfiles -nostdlib -Wl,--gc-sections -Wl,-e,"$ENTRY" -Wl,-u,"$KERNEL" -Wl,-Map="$MAP" \
        "${objs[@]}" -Wl,--start-group -lc -lgcc -Wl,--end-group -o "$ELF"; then
    echo "softfloat_check: FAILED to link the $ENTRY path" >&2
    exit 1
fi
arm-none-eabi-nm "$ELF" | awk '{print $NF}' | sort -u >"$SYMS"
if ! grep -qx "$ENTRY" "$SYMS" || ! grep -qx "$KERNEL" "$SYMS"; then
    echo "softfloat_check: FAILED: $ENTRY or $KERNEL is not in the linked ELF" >&2
    exit 1
fi

SOFTFLOAT_RE='^(__aeabi_(f|d|cf|cd)[a-z0-9_]*|__aeabi_u?[il]2[fd]|__aeabi_ul2[fd]|__.*(sf|df|tf|xf)[0-9a-z_]*|__fix[a-z0-9_]*|__float[a-z0-9_]*|__gnu_(f2h|h2f|d2h)[a-z_]*)$'
found=$(grep -E "$SOFTFLOAT_RE" "$SYMS" || true)
text=$(arm-none-eabi-size -A "$ELF" | awk '$1 ~ /^\.text/ {s += $2} END {print s + 0}')
rodata=$(arm-none-eabi-size -A "$ELF" | awk '$1 ~ /^\.rodata/ {s += $2} END {print s + 0}')
cpu_name=$(echo "$CPU" | sed -n 's/.*-mcpu=\([^ ]*\).*/\1/p')

# Who pulled routine $1 in: the map's "Archive member included to satisfy reference by file (symbol)"
# entry naming it (member, then the referencing file); otherwise (a member pulled in for another of its
# symbols) the references the linker's symbol trace (-Wl,-y) reports.
TRACE=$OUT/$tag.trace
pulled_by() {
    local who
    who=$(awk -v sym="($1)" '
        /^Archive member included/ {on = 1; next}
        on && /^(Discarded|Memory Configuration|Allocating common)/ {exit}
        on && /^[^ ]/ {member = $0; next}
        on && index($0, sym) {gsub(/^ +/, ""); print member " <- " $0; exit}' "$MAP")
    [ -z "$who" ] && who=$(grep -E "reference to $1\b" "$TRACE" | sed 's|.*/||' | sort -u | head -3 | paste -sd';' -)
    [ -z "$who" ] && who=$(grep -E "definition of $1\b" "$TRACE" | sed 's|^.*/\([^/]*\): definition of .*|defined in \1, a member linked for another of its routines|' | head -1)
    echo "$who" | sed "s|$OUT/obj/||g; s|/usr/lib/gcc/arm-none-eabi/[^ ]*/\(libgcc.a\)|\1|g"
}

echo "softfloat_check: $cpu_name, entry $ENTRY, kernel $KERNEL: .text $text bytes, .rodata $rodata bytes ($ELF)"
if [ -n "$found" ]; then
    n=$(echo "$found" | wc -l)
    ytrace=()
    while read -r sym; do ytrace+=(-Wl,-y,"$sym"); done <<<"$found"
    "$CC" $CPU -nostartfiles -nostdlib -Wl,--gc-sections -Wl,-e,"$ENTRY" -Wl,-u,"$KERNEL" "${ytrace[@]}" \
        "${objs[@]}" -Wl,--start-group -lc -lgcc -Wl,--end-group -o "$OUT/$tag.trace.elf" >"$TRACE" 2>&1
    echo "softfloat_check: $n soft-float routine(s) linked:"
    while read -r sym; do
        who=$(pulled_by "$sym")
        echo "  $sym    pulled in by: ${who:-(see $MAP)}"
    done <<<"$found"
fi

if [ $SELF_TEST = 1 ]; then
    if [ -n "$found" ]; then
        echo "softfloat_check: self-test passed: the float path (lstm_step) links soft-float routines and the check sees them"
        exit 0
    fi
    echo "softfloat_check: self-test FAILED: no soft-float routine found on the float path (the check cannot fail)"
    exit 1
fi
if [ -n "$found" ]; then
    echo "softfloat_check: FAILED: the integer step links soft-float routines"
    exit 1
fi
echo "softfloat_check: passed: the integer step links no soft-float routine"
exit 0
