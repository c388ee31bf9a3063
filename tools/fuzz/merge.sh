#!/usr/bin/env bash
# Merge inputs the fuzzer found into the committed corpus, keeping only those that add coverage.
#
#   tools/fuzz/merge.sh NEW_DIR...      # e.g. the FUZZ_CORPUS_OUT of .ci/fuzz.sh: NEW_DIR/model_crc, ...
#
# Each NEW_DIR whose name contains "snap" goes into tools/fuzz/corpus/snapshot, the others into
# tools/fuzz/corpus/model, through libFuzzer's -merge=1 (with the CRC-fixed harness, which reaches the
# most code). Uses the binaries of build/fuzz (run tools/fuzz/build.sh or .ci/fuzz.sh first).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${FUZZ_BIN:-$root/build/fuzz}"
[ $# -gt 0 ] || { echo "usage: $0 NEW_DIR..." >&2; exit 64; }
for d in "$@"; do
    case "$(basename "$d")" in
    *snap*) kind=snapshot ;;
    *) kind=model ;;
    esac
    before=$(ls "$here/corpus/$kind" | wc -l)
    "$bin/fuzz_${kind}_crc" -merge=1 -timeout=10 -rss_limit_mb=2048 "$here/corpus/$kind" "$d" 2>&1 | grep -E "MERGE-OUTER: [0-9]+ new files" || true
    echo "$kind corpus: $before -> $(ls "$here/corpus/$kind" | wc -l) files"
done
