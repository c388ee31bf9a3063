#!/usr/bin/env bash
# CI: build the libFuzzer harnesses of the C core (tools/fuzz/build.sh) and fuzz each of the four forms
# (model loader raw / CRC-fixed, snapshot restore raw / CRC-fixed) for a bounded time, starting from the
# committed corpus (tools/fuzz/corpus/). Fails on any crash, sanitizer report, oracle failure, timeout or
# OOM; the input that did it is left in $FUZZ_ARTIFACTS. Installs nothing: it needs clang with libFuzzer
# (Debian: clang-16 libclang-rt-16-dev), which .ci/run's environment provides.
#
#   .ci/fuzz.sh                      # 60 s per form (4 forms, ~4.5 min with the build)
#   FUZZ_SECONDS=600 .ci/fuzz.sh     # longer
#
# Environment: FUZZ_SECONDS (default 60) per form; FUZZ_TIMEOUT (default 10) seconds per input;
# FUZZ_RSS_MB (default 2048); FUZZ_JOBS (default 1) forms fuzzed at once; FUZZ_ARTIFACTS (default
# build/fuzz/artifacts) for crashing inputs; FUZZ_CORPUS_OUT (default: a temporary directory) where the
# inputs the fuzzer adds are kept (merge them into the repo with tools/fuzz/merge.sh); CLANG,
# LSTM_FUZZ_DEFS, FUZZ_STRICT_LIMITS, FUZZ_KNOWN_ISSUES: see tools/fuzz/build.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

seconds="${FUZZ_SECONDS:-60}"
timeout_s="${FUZZ_TIMEOUT:-10}"
rss_mb="${FUZZ_RSS_MB:-2048}"
jobs="${FUZZ_JOBS:-1}"
out="$root/build/fuzz"
artifacts="${FUZZ_ARTIFACTS:-$out/artifacts}"

if ! command -v clang >/dev/null 2>&1 && ! compgen -c clang- | grep -q '^clang-[0-9]'; then
    echo "fuzz.sh: clang is not installed; the fuzz job needs clang and libFuzzer (Debian: apt-get install clang-16 libclang-rt-16-dev)" >&2
    exit 2
fi
# build.sh exits 2 with its own message when no clang can link -fsanitize=fuzzer
tools/fuzz/build.sh fuzz "$out"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
corpus_out="${FUZZ_CORPUS_OUT:-$work/new}"
mkdir -p "$artifacts" "$corpus_out"

run_one() { # form -> writes $work/<form>.log and $work/<form>.rc
    local form="$1" seeds max_len dict
    case "$form" in
    model_*) seeds="$root/tools/fuzz/corpus/model"; max_len=65536; dict="$root/tools/fuzz/model.dict" ;;
    snapshot_*) seeds="$root/tools/fuzz/corpus/snapshot"; max_len=2048; dict="$root/tools/fuzz/snapshot.dict" ;;
    esac
    mkdir -p "$corpus_out/$form"
    local rc=0
    "$out/fuzz_$form" "$corpus_out/$form" "$seeds" -dict="$dict" -max_total_time="$seconds" \
        -timeout="$timeout_s" -rss_limit_mb="$rss_mb" -max_len="$max_len" -print_final_stats=1 \
        -artifact_prefix="$artifacts/${form}-" >"$work/$form.log" 2>&1 || rc=$?
    echo "$rc" >"$work/$form.rc"
}

forms=(model_raw model_crc snapshot_raw snapshot_crc)
start=$(date +%s)
running=0
for form in "${forms[@]}"; do
    echo "fuzzing $form for ${seconds}s ..."
    run_one "$form" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then wait -n || true; running=$((running - 1)); fi
done
wait

status=0
printf '\n%-14s %12s %10s %8s %8s  %s\n' form executions exec/s cov corpus result
for form in "${forms[@]}"; do
    log="$work/$form.log"
    rc="$(cat "$work/$form.rc")"
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1 || true)"
    speed="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1 || true)"
    cov="$( (grep -o 'cov: [0-9]*' "$log" || true) | tail -1 | cut -d' ' -f2)"
    corp="$( (grep -o 'corp: [0-9]*' "$log" || true) | tail -1 | cut -d' ' -f2)"
    result=ok
    if [ "$rc" != 0 ]; then
        result="FAILED (exit $rc)"
        status=1
    fi
    printf '%-14s %12s %10s %8s %8s  %s\n' "$form" "${execs:-?}" "${speed:-?}" "${cov:-?}" "${corp:-?}" "$result"
done
echo "total wall time $(( $(date +%s) - start )) s"

if [ "$status" != 0 ]; then
    for form in "${forms[@]}"; do
        [ "$(cat "$work/$form.rc")" = 0 ] && continue
        echo
        echo "===== $form: last lines of the fuzzer log ====="
        (grep -v '^#[0-9]' "$work/$form.log" || true) | tail -40
    done
    echo
    echo "fuzz.sh: FAILED. Crashing inputs are in $artifacts; reproduce with: $out/fuzz_<form> <input>" >&2
fi
exit "$status"
