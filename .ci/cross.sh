#!/usr/bin/env bash
# .ci/cross.sh - build and run the C core on every target we can emulate here, and compare the results.
#
#   .ci/cross.sh                  all targets
#   .ci/cross.sh aarch64 musl     only these (names as in the table below)
#   LSTM_SRC_DIR=/path .ci/cross.sh   test another copy of src/lstm_c (the Makefiles' SRC_DIR)
#
# Linux targets build tests/c (test_*.c + helpers + src/lstm_c/*.c, the Makefile's CONFIG=none: no BLAS)
# and tests/c/xcheck, and run them (qemu-user for aarch64/armhf):
#   x86_64-gcc  x86_64-nosimd (-DLSTM_NO_SIMD: the portable kernels)  x86_64-clang  x86_64-clang-nosimd  i386 (i686-linux-gnu-gcc, x87 float, static)  aarch64 (static, qemu-aarch64)
#   armhf (static, qemu-arm)  musl (musl-gcc, static, SIMD on)
# Firmwares under qemu-system-arm with semihosting (bounded by a timeout):
#   cortex-m4 (mps2-an386: opens the export-c model from flash, checks golden outputs, prints xcheck)
#   cortex-m0 (microbit, soft float: prints xcheck)
#   cortex-m0-tests (tools/cortex_m0/tests: tests/c/test_s16.c and test_int.c compiled for the Cortex-M0 and
#     run on the microbit with 8 MB of RAM: the Thumb-1 panel kernel and the 32-bit integer step against
#     the plain sums and the spec's int64 step; fails if any check fails)
# m0-int: .ci/softfloat_check.sh: the integer step (lstm_step_int) linked for the Cortex-M0 holds no
#   soft-float routine, and its --self-test (the float step lstm_step) must find them (the check can fail).
# Plus host-stream: examples/host_stream.c on x86-64 over the shipped tiny model; and sizes: .ci/sizes.py
# (CMake builds of the library per target with cmake/toolchains/*, sizes at -Os/-O2, Cortex-M4 stack
# depth and firmware size) into build/cross/sizes.md.
#
# xcheck prints the outputs of a fixed fp32, a fixed int8-dynamic and a fixed int16x8 model for a fixed
# input sequence (float bit patterns; the int16x8 model twice: lstm_step_int's int16 outputs, "i16", and
# lstm_step's floats, "i16f"); each target's lines are diffed against x86_64-gcc's (the SIMD kernels this
# CPU picks) and x86_64-nosimd's (the portable kernels): "same" or how many of the 16 steps differ. Prints
# a table (built / ran / passed / bit-identical) and exits 1 if any target failed to build, run or pass,
# or if its int16x8 lines are not identical to both references' (or missing): the integer-only model
# must give the same bits everywhere (docs/int16x8.md). fp32 and int8-dynamic differences are reported,
# not failures (they agree only within float rounding across ISAs; see docs/c_library.md).
# Logs: build/cross/<target>.log.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/build/cross
SRC=${LSTM_SRC_DIR:-$ROOT/src/lstm_c}
JOBS=${JOBS:-2}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
mkdir -p "$OUT"

ALL="x86_64-gcc x86_64-nosimd x86_64-clang x86_64-clang-nosimd i386 aarch64 armhf musl cortex-m4 cortex-m0 cortex-m0-tests m0-int host-stream sizes"
TARGETS=${*:-$ALL}
NPROGS=$(ls tests/c/test_*.c | wc -l)

declare -A BUILT RAN PASSED IDENT IDENT2 NOTE INT_OK

have() { command -v "$1" >/dev/null 2>&1; }

# linux_target NAME CC EXTRA_CFLAGS EXTRA_LDFLAGS RUNNER
linux_target() {
    local name=$1 cc=$2 cflags=$3 ldflags=$4 runner=$5 log=$OUT/$1.log
    local mk=(make -C tests/c -j"$JOBS" CONFIG=none BUILD_NAME="cross-$name" CC="$cc" SRC_DIR="$SRC"
              EXTRA_CFLAGS="$cflags" EXTRA_LDFLAGS="$ldflags" RUN="$runner")
    : >"$log"
    if ! have "$cc" || { [ -n "$runner" ] && ! have "${runner%% *}"; }; then
        BUILT[$name]=skip; NOTE[$name]="missing $cc or ${runner%% *}"; return
    fi
    if "${mk[@]}" all xcheck >>"$log" 2>&1; then BUILT[$name]=yes; else
        BUILT[$name]=NO; NOTE[$name]=$(grep -m1 -E "error:|undefined" "$log" | sed "s|$ROOT/||g; s|$SRC/||g" | cut -c1-150); return
    fi
    local out=$OUT/$name.run
    timeout "$RUN_TIMEOUT" "${mk[@]}" run >"$out" 2>&1
    local rc=$?
    cat "$out" >>"$log"
    local summaries failed
    summaries=$(grep -cE '^[0-9]+ passed, [0-9]+ failed$' "$out")
    failed=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | awk '{s += $3} END {print s + 0}')
    if [ "$summaries" -eq "$NPROGS" ]; then RAN[$name]=yes; else RAN[$name]="NO ($summaries/$NPROGS)"; fi
    if [ $rc -eq 0 ] && [ "$summaries" -eq "$NPROGS" ] && [ "$failed" -eq 0 ]; then PASSED[$name]=yes; else
        PASSED[$name]=NO
        NOTE[$name]="$failed checks failed; first: $(grep -m1 -E 'FAIL|error|Segmentation|fault|Abort|Illegal' "$out" | sed "s|$ROOT/||g" | cut -c1-120)"
        [ "$summaries" -lt "$NPROGS" ] && NOTE[$name]="$((NPROGS - summaries)) test program(s) died without a summary (crash); ${NOTE[$name]}"
        [ $rc -eq 124 ] && NOTE[$name]="timed out after ${RUN_TIMEOUT}s"
    fi
    timeout 120 $runner "tests/c/build/cross-$name/xcheck/xcheck" >"$OUT/$name.xcheck" 2>>"$log"
    echo "xcheck exit $?" >>"$log"
}

# firmware_target NAME DIR
firmware_target() {
    local name=$1 dir=$2 log=$OUT/$1.log
    local mk=(make -C "$dir" OUT="$OUT/$name" SRC_DIR="$SRC")
    : >"$log"
    if ! have arm-none-eabi-gcc || ! have qemu-system-arm; then
        BUILT[$name]=skip; NOTE[$name]="missing arm-none-eabi-gcc or qemu-system-arm"; return
    fi
    if "${mk[@]}" -j"$JOBS" all >>"$log" 2>&1; then BUILT[$name]=yes; else
        BUILT[$name]=NO; NOTE[$name]=$(grep -m1 -E "error|undefined" "$log" | cut -c1-150); return
    fi
    timeout "$RUN_TIMEOUT" "${mk[@]}" TIMEOUT=120 run >"$OUT/$name.run" 2>&1
    local rc=$?
    cat "$OUT/$name.run" >>"$log"
    if grep -q '^RESULT ' "$OUT/$name.run"; then RAN[$name]=yes; else RAN[$name]=NO; fi
    if [ $rc -eq 0 ] && grep -q '^RESULT PASS' "$OUT/$name.run"; then PASSED[$name]=yes; else
        PASSED[$name]=NO
        NOTE[$name]=$(grep -m1 -E 'failed|FAULT|above|^lstm_[a-z_]+( [0-9]+)?: ' "$OUT/$name.run" | cut -c1-150)
    fi
    grep -E '^(fp32|int8dyn|int16x8|int16x8f) t=|^(fp32|int8dyn|int16x8|int16x8f): ' "$OUT/$name.run" >"$OUT/$name.xcheck"
    local golden
    golden=$(grep -m1 '^golden:' "$OUT/$name.run")
    [ -n "$golden" ] && NOTE[$name]="${NOTE[$name]:-} ${golden#golden: }"
}

m0_int_target() { # the integer step links no soft-float routine on the Cortex-M0 (and the check can fail)
    local name=m0-int log=$OUT/m0-int.log rc1 rc2
    : >"$log"
    if ! have arm-none-eabi-gcc; then BUILT[$name]=skip; NOTE[$name]="missing arm-none-eabi-gcc"; return; fi
    LSTM_SRC_DIR="$SRC" bash .ci/softfloat_check.sh >>"$log" 2>&1; rc1=$?
    LSTM_SRC_DIR="$SRC" bash .ci/softfloat_check.sh --self-test >>"$log" 2>&1; rc2=$?
    if [ $rc1 -le 1 ] && [ $rc2 -le 1 ]; then BUILT[$name]=yes; RAN[$name]=yes; else
        BUILT[$name]=NO; NOTE[$name]=$(grep -m1 -E "FAILED|not found" "$log" | cut -c1-150); return
    fi
    if [ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]; then PASSED[$name]=yes; NOTE[$name]="lstm_step_int: no soft float; self-test sees lstm_step's"
    else PASSED[$name]=NO; NOTE[$name]=$(grep -m1 -E "FAILED" "$log" | cut -c1-150); fi
    IDENT[$name]="-"; IDENT2[$name]="-"; INT_OK[$name]="-"
}

host_stream_target() {
    local name=host-stream log=$OUT/host-stream.log bin=$OUT/host_stream
    : >"$log"
    if gcc -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -ffp-contract=off -fno-math-errno -fno-trapping-math \
            -I"$SRC" "$SRC"/*.c examples/host_stream.c -lm -o "$bin" >>"$log" 2>&1; then BUILT[$name]=yes; else
        BUILT[$name]=NO; NOTE[$name]=$(grep -m1 error "$log" | cut -c1-150); return
    fi
    # examples/models/tiny_input.f32 -> outputs, compared with tiny_expected.f32 (the Python binding's)
    timeout 60 "$bin" examples/models/tiny.lstm <examples/models/tiny_input.f32 >"$OUT/tiny_output.f32" 2>>"$log"
    local rc=$?
    [ $rc -eq 0 ] && RAN[$name]=yes || RAN[$name]="NO (exit $rc)"
    local worst
    worst=$(paste <(od -An -v -f -w4 "$OUT/tiny_output.f32") <(od -An -v -f -w4 examples/models/tiny_expected.f32) |
            awk 'BEGIN {w = 0; n = 0} NF == 2 {d = $1 - $2; if (d < 0) d = -d; if (d > w) w = d; n++}
                 NF != 2 {w = 1e9} END {if (n == 0) w = 1e9; print w}')
    if [ $rc -eq 0 ] && [ -s "$OUT/tiny_output.f32" ] &&
       cmp -s <(stat -c %s "$OUT/tiny_output.f32") <(stat -c %s examples/models/tiny_expected.f32) &&
       awk -v w="$worst" 'BEGIN {exit !(w <= 1e-5)}'; then PASSED[$name]=yes; else PASSED[$name]=NO; fi
    NOTE[$name]="max abs diff vs Python binding $worst"
    IDENT[$name]="-"
}

start=$(date +%s)
# always from scratch: the objects do not record which SRC_DIR or flags built them
for t in $TARGETS; do rm -rf "tests/c/build/cross-$t" "${OUT:?}/$t" "$OUT/$t".*; done
for t in $TARGETS; do
    echo "== $t" >&2
    case $t in
        x86_64-gcc) linux_target "$t" gcc "" "" "" ;;
        x86_64-nosimd) linux_target "$t" gcc "-DLSTM_NO_SIMD" "" "" ;;
        x86_64-clang) linux_target "$t" clang "" "" "" ;;
        x86_64-clang-nosimd) linux_target "$t" clang "-DLSTM_NO_SIMD" "" "" ;;
        i386) linux_target "$t" i686-linux-gnu-gcc "" "-static" "" ;;
        aarch64) linux_target "$t" aarch64-linux-gnu-gcc "" "-static" "qemu-aarch64" ;;
        armhf) linux_target "$t" arm-linux-gnueabihf-gcc "" "-static" "qemu-arm" ;;
        musl) linux_target "$t" musl-gcc "" "-static" "" ;;
        cortex-m4) firmware_target "$t" examples/cortex_m4 ;;
        cortex-m0) firmware_target "$t" examples/cortex_m0 ;;
        cortex-m0-tests)
            firmware_target "$t" tools/cortex_m0/tests
            [ -s "$OUT/$t.run" ] && NOTE[$t]="$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$OUT/$t.run" | tr '\n' ';')$(
                grep -m1 -E 'FAIL |FAULT' "$OUT/$t.run" | cut -c1-120)"
            IDENT[$t]="-"; IDENT2[$t]="-"; INT_OK[$t]="-" ;;
        m0-int) m0_int_target ;;
        host-stream) host_stream_target ;;
        sizes)
            if ! have python3 || ! have cmake; then BUILT[$t]=skip; NOTE[$t]="needs python3 and cmake"; else
                if timeout 900 python3 .ci/sizes.py --src "$SRC" --out "$OUT/sizes" >"$OUT/sizes.md" 2>"$OUT/sizes.log"
                then BUILT[$t]=yes; RAN[$t]=yes; PASSED[$t]=yes; else BUILT[$t]=NO; fi
                NOTE[$t]="tables in ${OUT#$ROOT/}/sizes.md"; IDENT[$t]="-"; IDENT2[$t]="-"
            fi ;;
        *) echo "unknown target $t (known: $ALL)" >&2; exit 2 ;;
    esac
done

# bit-identity of the xcheck lines against x86_64-gcc's (SIMD kernels of this CPU) and x86_64-nosimd's
# (the portable kernels), per model
for r in x86_64-gcc x86_64-nosimd; do
    if [[ " $TARGETS " != *" $r "* ]]; then
        rm -rf "tests/c/build/cross-$r" "$OUT/$r".*
        case $r in
            x86_64-gcc) linux_target "$r" gcc "" "" "" ;;
            *) linux_target "$r" gcc "-DLSTM_NO_SIMD" "" "" ;;
        esac
    fi
done
compare() { # compare NAME REFERENCE MODEL -> "same" | "k/16 differ" | "n/a"
    local f=$OUT/$1.xcheck ref=$OUT/$2.xcheck
    [ -s "$f" ] && [ -s "$ref" ] || { echo "n/a"; return; }
    local a b
    a=$(grep "^$3 t=" "$ref"); b=$(grep "^$3 t=" "$f")
    [ -z "$a" ] && { echo "n/a ($2 did not run)"; return; }
    [ -z "$b" ] && { echo "n/a (did not run)"; return; }
    local n diff
    n=$(printf '%s\n' "$a" | wc -l)
    diff=$(diff <(printf '%s\n' "$a") <(printf '%s\n' "$b") | grep -c '^>')
    [ "$diff" -eq 0 ] && echo "same" || echo "$diff/$n differ"
}
for t in $TARGETS; do
    [ "$t" = host-stream ] || [ "$t" = sizes ] || [ "$t" = m0-int ] || [ "$t" = cortex-m0-tests ] && continue
    i1=$(compare "$t" x86_64-gcc int16x8); f1=$(compare "$t" x86_64-gcc int16x8f)
    i2=$(compare "$t" x86_64-nosimd int16x8); f2=$(compare "$t" x86_64-nosimd int16x8f)
    IDENT[$t]="fp32 $(compare "$t" x86_64-gcc fp32), q8 $(compare "$t" x86_64-gcc int8dyn), i16 $i1, i16f $f1"
    IDENT2[$t]="fp32 $(compare "$t" x86_64-nosimd fp32), q8 $(compare "$t" x86_64-nosimd int8dyn), i16 $i2, i16f $f2"
    if [ "$i1 $f1 $i2 $f2" = "same same same same" ]; then INT_OK[$t]=yes; else INT_OK[$t]=NO; fi
done

fail=0
printf '\n%-19s %-5s %-10s %-6s %-6s %-56s %-56s %s\n' target built ran passed int16 "xcheck vs x86_64-gcc" \
       "xcheck vs x86_64-nosimd" notes
for t in $TARGETS; do
    b=${BUILT[$t]:-NO}; r=${RAN[$t]:--}; p=${PASSED[$t]:--}; i=${INT_OK[$t]:--}
    printf '%-19s %-5s %-10s %-6s %-6s %-56s %-56s %s\n' "$t" "$b" "$r" "$p" "$i" "${IDENT[$t]:--}" \
        "${IDENT2[$t]:--}" "${NOTE[$t]:-}"
    [ "$b" = skip ] && continue
    [ "$b" = yes ] && [ "$r" = yes ] && [ "$p" = yes ] || fail=1
    [ "$i" = NO ] && fail=1
done
echo "($(($(date +%s) - start)) s; logs in ${OUT#$ROOT/}/)"
exit $fail
