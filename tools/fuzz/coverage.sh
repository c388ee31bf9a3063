#!/usr/bin/env bash
# Line coverage of the C core reached by the fuzz corpus.
#
#   tools/fuzz/coverage.sh [EXTRA_CORPUS_DIR...]
#
# Builds the four harnesses with -fprofile-instr-generate -fcoverage-mapping (build.sh cov), replays
# tools/fuzz/corpus/{model,snapshot} (and any directories given: a model_* or snapshot_* name, or
# anything containing "snap", goes to the snapshot harnesses, the rest to the model harnesses) once per
# input, merges the profiles with llvm-profdata and prints llvm-cov's report for src/lstm_c/*.c (model.c,
# state.c and engine.c are the ones the harnesses aim at). llvm-profdata/llvm-cov must match the clang
# version (Debian: llvm-16 for clang-16). The HTML report goes to build/fuzz-cov/html with COV_HTML=1.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/build/fuzz-cov"
"$here/build.sh" cov "$out"
cc="$(cat "$out/compiler")"
ver="$("$cc" --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -1)"
pick() { # tool name -> versioned binary
    for t in "$1-$ver" "/usr/lib/llvm-$ver/bin/$1" "$1"; do
        command -v "$t" >/dev/null 2>&1 && { echo "$t"; return; }
    done
    echo "coverage.sh: $1 for clang $ver not found (Debian: apt-get install llvm-$ver)" >&2
    exit 2
}
profdata="$(pick llvm-profdata)"
cov="$(pick llvm-cov)"

rm -rf "$out/prof"
mkdir -p "$out/prof"
model_dirs=("$here/corpus/model")
snap_dirs=("$here/corpus/snapshot")
for d in "$@"; do
    case "$(basename "$d")" in
    *snap*) snap_dirs+=("$d") ;;
    *) model_dirs+=("$d") ;;
    esac
done
for form in raw crc; do
    LLVM_PROFILE_FILE="$out/prof/model_$form-%p.profraw" "$out/fuzz_model_$form" -runs=0 "${model_dirs[@]}" \
        >"$out/prof/model_$form.log" 2>&1 || { echo "replay of model_$form failed:"; tail -20 "$out/prof/model_$form.log"; exit 1; }
    LLVM_PROFILE_FILE="$out/prof/snapshot_$form-%p.profraw" "$out/fuzz_snapshot_$form" -runs=0 "${snap_dirs[@]}" \
        >"$out/prof/snapshot_$form.log" 2>&1 || { echo "replay of snapshot_$form failed:"; tail -20 "$out/prof/snapshot_$form.log"; exit 1; }
done
"$profdata" merge -sparse "$out"/prof/*.profraw -o "$out/fuzz.profdata"
objs=()
for b in model_raw model_crc snapshot_raw snapshot_crc; do objs+=(-object "$out/fuzz_$b"); done
srcs=("$root"/src/lstm_c/*.c "$root"/src/lstm_c/*.h)
echo "inputs replayed: model $(cat "$out"/prof/model_raw.log | sed -n 's/^INFO: seed corpus: files: \([0-9]*\).*/\1/p' | head -1), snapshot $(cat "$out"/prof/snapshot_raw.log | sed -n 's/^INFO: seed corpus: files: \([0-9]*\).*/\1/p' | head -1)"
"$cov" report "${objs[@]:1}" -instr-profile="$out/fuzz.profdata" "${srcs[@]}"
# per harness: line coverage of the three files the harnesses aim at
echo
printf '%-14s %10s %10s %10s\n' harness model.c state.c engine.c
for b in model_raw model_crc snapshot_raw snapshot_crc; do
    "$profdata" merge -sparse "$out"/prof/$b-*.profraw -o "$out/$b.profdata"
    row=""
    for f in model.c state.c engine.c; do
        pct="$("$cov" report "$out/fuzz_$b" -instr-profile="$out/$b.profdata" "$root/src/lstm_c/$f" 2>/dev/null |
               awk -v f="/$f" 'substr($1, length($1) - length(f) + 1) == f { print $(NF-3) }')"
        row="$row $(printf '%10s' "${pct:-?}")"
    done
    printf '%-14s%s\n' "$b" "$row"
done
if [ "${COV_HTML:-0}" = 1 ]; then
    "$cov" show "${objs[@]:1}" -instr-profile="$out/fuzz.profdata" -format=html -output-dir="$out/html" "${srcs[@]}"
    echo "HTML report: $out/html/index.html"
fi
