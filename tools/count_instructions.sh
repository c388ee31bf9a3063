#!/bin/sh
# count_instructions.sh - instructions per LSTM step on a Cortex-M4, counted deterministically: the
# firmware tools/cortex_m4/count.c runs on qemu-system-arm -M mps2-an386 -icount shift=0, where virtual
# time advances exactly 1 ns per executed instruction, and reads SysTick (25 MHz processor clock, so one
# tick = 40 instructions); each figure is the mean over 32 calls (resolution 40 / 32 instructions), the
# timing loop's own cost subtracted. The same numbers come out on every run and every host.
# Model: one layer, I = H, no projection or head; H = 32, 64, 128; fp32, int8, int8-dynamic; the reference
# table against the Cortex-M DSP table (both in the same firmware, same compiler flags: -O2 -mcpu=cortex-m4
# -mfpu=fpv4-sp-d16 -mfloat-abi=hard). Prints the raw lines, then markdown tables (docs/arm.md).
#
#   tools/count_instructions.sh [build-dir]      (default /tmp/lstm_cortex_m4_count)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-/tmp/lstm_cortex_m4_count}
RAW="$OUT/count.txt"
mkdir -p "$OUT"
"$HERE/cortex_m4/run.sh" "$OUT" count > "$RAW" 2>&1 || { cat "$RAW"; exit 1; }
cat "$RAW"
echo
awk '
/^count / {
    isa = $2; dtype = $3; h = substr($4, 3); what = $5; n = $6
    v[isa, dtype, h, what] = n
    if (!(h in seen)) { seen[h] = 1; hs[++nh] = h }
}
END {
    print "Instructions per step (whole lstm_step):"
    print ""
    print "| H | dtype | reference | cortex_m_dsp | ratio | per weight (ref / dsp) |"
    print "|---|---|---:|---:|---:|---|"
    split("fp32 int8 int8-dynamic", dts, " ")
    for (i = 1; i <= nh; i++) for (d = 1; d <= 3; d++) {
        h = hs[i]; dt = dts[d]; w = 8 * h * h
        r = v["reference", dt, h, "step"]; c = v["cortex_m_dsp", dt, h, "step"]
        printf "| %s | %s | %d | %d | %.2fx | %.2f / %.2f |\n", h, dt, r, c, r / c, r / w, c / w
    }
    print ""
    print "int8-dynamic step by kernel (instructions per call; matvec = gemv_s8 over W_ih and W_hh):"
    print ""
    print "| H | kernel | reference | cortex_m_dsp | ratio | per weight (ref / dsp) |"
    print "|---|---|---:|---:|---:|---|"
    split("matvec quantize q8_gates cell", ks, " ")
    for (i = 1; i <= nh; i++) for (k = 1; k <= 4; k++) {
        h = hs[i]; kk = ks[k]; w = 8 * h * h
        r = v["reference", "int8-dynamic", h, kk]; c = v["cortex_m_dsp", "int8-dynamic", h, kk]
        if (kk == "matvec") printf "| %s | %s | %d | %d | %.2fx | %.3f / %.3f |\n", h, kk, r, c, r / c, r / w, c / w
        else printf "| %s | %s | %d | %d | %.2fx | |\n", h, kk, r, c, r / c
    }
}' "$RAW"
