#!/usr/bin/env bash
# Build the libFuzzer harnesses of the C core.
#
#   tools/fuzz/build.sh [fuzz|cov|replay] [OUTDIR]
#
#   fuzz    (default) libFuzzer + ASan + UBSan, -fno-sanitize-recover=all:
#           OUTDIR/fuzz_model_raw, fuzz_model_crc, fuzz_snapshot_raw, fuzz_snapshot_crc
#   cov     the same four with -fprofile-instr-generate -fcoverage-mapping, no sanitizers (coverage.sh)
#   replay  the same four with sanitizers but a plain main() (no libFuzzer) that runs each file given;
#           for machines whose clang lacks libFuzzer (tests/test_fuzz_harness.py falls back to it)
#
# Environment:
#   CLANG             compiler (default: the newest of clang-19 .. clang-14, then clang, that links
#                     -fsanitize=fuzzer)
#   LSTM_FUZZ_DEFS    extra defines for the core, e.g. -DLSTM_NO_SIMD to leave out the x86 SIMD kernels
#                     (the default is none: every kernel table of this CPU is built and fuzzed). Before
#                     the core dropped GCC target_clones, clang 14-16 could only link it with -DLSTM_NO_SIMD.
#   FUZZ_STRICT_LIMITS 1 (default) or 0: see fuzz_common.h (value-limit oracles of the lstm.h contract)
#   FUZZ_KNOWN_ISSUES 0 (default) or 1: 1 compiles the core without UBSan's float-cast-overflow check, so
#                     the fuzzer can explore past the known float->int conversion bugs the core is being
#                     fixed for (tiny-vector quantisation, NaN into the exp bit trick). CI uses 0.
#   OUTDIR            default build/fuzz (or build/fuzz-cov, build/fuzz-replay)
# Prints the compiler it used. Exits 2 with a message when no usable clang / libFuzzer is found.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
mode="${1:-fuzz}"
case "$mode" in
fuzz) out="${2:-$root/build/fuzz}" ;;
cov) out="${2:-$root/build/fuzz-cov}" ;;
replay) out="${2:-$root/build/fuzz-replay}" ;;
*) echo "usage: $0 [fuzz|cov|replay] [OUTDIR]" >&2; exit 64 ;;
esac
defs="${LSTM_FUZZ_DEFS-}"
strict="${FUZZ_STRICT_LIMITS:-1}"
known="${FUZZ_KNOWN_ISSUES:-0}"
mkdir -p "$out"
rm -f "$out"/fuzz_model_raw "$out"/fuzz_model_crc "$out"/fuzz_snapshot_raw "$out"/fuzz_snapshot_crc

probe_dir="$(mktemp -d)"
trap 'rm -rf "$probe_dir"' EXIT
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$probe_dir/p.c"
links_fuzzer() { "$1" -fsanitize=fuzzer,address,undefined "$probe_dir/p.c" -o "$probe_dir/p" >/dev/null 2>&1; }
links_plain() { "$1" -fsanitize=address,undefined -x c - -o "$probe_dir/q" >/dev/null 2>&1 <<<'int main(void){return 0;}'; }

if [ -n "${CLANG:-}" ]; then
    cc="$CLANG"
    command -v "$cc" >/dev/null 2>&1 || { echo "fuzz build: CLANG=$cc not found" >&2; exit 2; }
else
    cc=""
    for c in clang-19 clang-18 clang-17 clang-16 clang-15 clang-14 clang; do
        command -v "$c" >/dev/null 2>&1 || continue
        if [ "$mode" = replay ]; then links_plain "$c" && { cc="$c"; break; }
        elif links_fuzzer "$c"; then cc="$c"; break; fi
    done
    if [ -z "$cc" ]; then
        if command -v clang >/dev/null 2>&1 || compgen -c clang- >/dev/null 2>&1; then
            echo "fuzz build: clang is installed but cannot link -fsanitize=fuzzer (install libclang-rt-<version>-dev, e.g. libclang-rt-16-dev, for libFuzzer)" >&2
        else
            echo "fuzz build: no clang found (install clang and libclang-rt-<version>-dev, e.g. clang-16 libclang-rt-16-dev)" >&2
        fi
        exit 2
    fi
fi
if [ "$mode" != replay ] && ! links_fuzzer "$cc"; then
    echo "fuzz build: $cc cannot link -fsanitize=fuzzer (libFuzzer missing: install libclang-rt-<version>-dev)" >&2
    exit 2
fi
echo "fuzz build ($mode): $("$cc" --version | head -1) [$cc], core defines: ${defs:-(none)}, strict limits: $strict, known-issue mode: $known"

common=(-std=c99 -g -O1 -fno-omit-frame-pointer -ffp-contract=off -I"$root/src/lstm_c" $defs
        -DFUZZ_STRICT_LIMITS="$strict" -DFUZZ_SNAPSHOT_MODEL="$here/snapshot_model.lstm")
case "$mode" in
fuzz) flags=(-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all) ;;
cov) flags=(-fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping) ;;
replay) flags=(-fsanitize=address,undefined -fno-sanitize-recover=all -DFUZZ_REPLAY_MAIN "$here/replay_main.c") ;;
esac

# the core once per mode (objects shared by the four harnesses); -lm for the harness's math
objdir="$out/obj"
mkdir -p "$objdir"
objs=()
for src in "$root"/src/lstm_c/*.c; do
    o="$objdir/$(basename "${src%.c}").o"
    core_flags=("${flags[@]}")
    # the core gets the sanitizers and coverage, but not libFuzzer's main or the replay main
    case "$mode" in
    fuzz) core_flags=(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all) ;;
    cov) core_flags=(-fprofile-instr-generate -fcoverage-mapping) ;;
    replay) core_flags=(-fsanitize=address,undefined -fno-sanitize-recover=all) ;;
    esac
    if [ "$known" = 1 ] && [ "$mode" != cov ]; then core_flags+=(-fno-sanitize=float-cast-overflow); fi
    "$cc" "${common[@]}" "${core_flags[@]}" -c "$src" -o "$o" &
    objs+=("$o")
done
wait

for h in model snapshot; do
    for form in raw crc; do
        fix=0
        [ "$form" = crc ] && fix=1
        "$cc" "${common[@]}" "${flags[@]}" -DFUZZ_FIX_CRC=$fix "$here/fuzz_$h.c" "${objs[@]}" -lm \
            -o "$out/fuzz_${h}_$form" &
    done
done
wait
for h in model snapshot; do
    for form in raw crc; do
        [ -x "$out/fuzz_${h}_$form" ] || { echo "fuzz build: fuzz_${h}_$form failed to build" >&2; exit 1; }
    done
done
echo "$cc" >"$out/compiler"
echo "built in $out: fuzz_model_raw fuzz_model_crc fuzz_snapshot_raw fuzz_snapshot_crc"
