#!/bin/sh
# count_instructions.sh - instructions per LSTM step on a Cortex-M4 and a Cortex-M0, counted
# deterministically: under qemu-system-arm -icount shift=0 virtual time advances exactly 1 ns per executed
# instruction, and the count firmwares read SysTick on the processor clock:
#   Cortex-M4: tools/cortex_m4/count.c on -M mps2-an386 (25 MHz: one tick = 40 instructions), hard float,
#              the reference table against the Cortex-M DSP table, H = 32, 64, 128;
#   Cortex-M0: tools/cortex_m0/count.c on -M microbit (16 MHz: one tick = 62.5 instructions, checked by
#              each image on a loop of known length), soft float, the reference table (the only one), H =
#              32 and 64, one firmware image per model (the models live in its 256 KB of flash).
# Each figure is the mean over 32 calls (resolution 40 / 32 and 62.5 / 32 instructions), the timing loop's
# own cost subtracted; the same numbers come out on every run and every host.
# Model: one layer, I = H, no projection or head; fp32, int8, int8-dynamic (tests/c/testlib.c's random
# net, seed 42 + H) and int16x8 (the converter on a random torch LSTM: tools/cortex_m0/gen_int16x8_model.py,
# so $PYTHON must import torch and lstm_embed with its extension built). Both firmwares are built -O2
# (M4: -mcpu=cortex-m4 -mfpu=fpv4-sp-d16 -mfloat-abi=hard; M0: -mcpu=cortex-m0 -mfloat-abi=soft).
# Prints the raw lines, then markdown tables (docs/arm.md, docs/int16x8.md).
#
#   PYTHON=/tmp/venv/bin/python tools/count_instructions.sh [build-dir]   (default /tmp/lstm_count)
#   ... [build-dir] m4 | m0                                              (one core only)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-/tmp/lstm_count}
WHICH=${2:-both}
mkdir -p "$OUT"
case "$WHICH" in both | m4 | m0) ;; *) echo "usage: $0 [build-dir] [both|m4|m0]" >&2; exit 2 ;; esac
if [ "$WHICH" != m0 ]; then
    "$HERE/cortex_m4/run.sh" "$OUT/m4" count > "$OUT/m4.txt" 2>&1 || { cat "$OUT/m4.txt"; exit 1; }
    echo "# Cortex-M4 (mps2-an386)"
    cat "$OUT/m4.txt"
fi
if [ "$WHICH" != m4 ]; then
    "$HERE/cortex_m0/run.sh" "$OUT/m0" count > "$OUT/m0.txt" 2>&1 || { cat "$OUT/m0.txt"; exit 1; }
    echo "# Cortex-M0 (microbit)"
    cat "$OUT/m0.txt"
    # every image's calibration: 2^21 instructions must take 2^21 / 62.5 = 33554.4 ticks
    if grep '^calibration:' "$OUT/m0.txt" | grep -qv ' in 3355[45] ticks'; then
        echo "count_instructions: a Cortex-M0 image's calibration is off (expected 33554 or 33555 ticks)" >&2
        exit 1
    fi
fi
echo
if [ "$WHICH" != m0 ]; then
awk '
/^count / {
    isa = $2; dtype = $3; h = substr($4, 3); what = $5; n = $6
    v[isa, dtype, h, what] = n
    if (!(h in seen)) { seen[h] = 1; hs[++nh] = h }
}
END {
    print "Cortex-M4 (mps2-an386), instructions per step (whole lstm_step; int16x8: lstm_step_int):"
    print ""
    print "| H | dtype | reference | cortex_m_dsp | ratio | per weight (ref / dsp) |"
    print "|---|---|---:|---:|---:|---|"
    split("fp32 int8 int8-dynamic int16x8", dts, " ")
    for (i = 1; i <= nh; i++) for (d = 1; d <= 4; d++) {
        h = hs[i]; dt = dts[d]; w = 8 * h * h
        r = v["reference", dt, h, "step"]; c = v["cortex_m_dsp", dt, h, "step"]
        if (r == "" || c == "") continue
        printf "| %s | %s | %d | %d | %.2fx | %.2f / %.2f |\n", h, dt, r, c, r / c, r / w, c / w
    }
    print ""
    print "Cortex-M4 int8-dynamic step by kernel (instructions per call; matvec = gemv_s8 over W_ih and W_hh):"
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
    print ""
    print "Cortex-M4 int16x8 step by part (products = gemv_s16 over W_ih and W_hh; epilogue = lstm_int_layer less the"
    print "products, of which requant / activations / cell, measured apart; other = the step less the layer;"
    print "step_f32io = lstm_step, float in and out):"
    print ""
    print "| H | part | reference | cortex_m_dsp | ratio | per weight (ref / dsp) |"
    print "|---|---|---:|---:|---:|---|"
    split("step step_f32io products epilogue requant activations cell other", ps, " ")
    for (i = 1; i <= nh; i++) for (k = 1; k <= 8; k++) {
        h = hs[i]; kk = ps[k]; w = 8 * h * h
        r = v["reference", "int16x8", h, kk]; c = v["cortex_m_dsp", "int16x8", h, kk]
        if (r == "" || c == "") continue
        if (kk == "products" || kk ~ /^step/)
            printf "| %s | %s | %d | %d | %.2fx | %.3f / %.3f |\n", h, kk, r, c, r / c, r / w, c / w
        else printf "| %s | %s | %d | %d | %.2fx | |\n", h, kk, r, c, r / c
    }
}' "$OUT/m4.txt"
echo
fi
if [ "$WHICH" != m4 ]; then
awk '
/^count / {
    dtype = $3; h = substr($4, 3); what = $5; n = $6
    v[dtype, h, what] = n
    if (!(h in seen)) { seen[h] = 1; hs[++nh] = h }
}
END {
    print "Cortex-M0 (microbit, soft float, reference table), instructions per step (int16x8: lstm_step_int):"
    print ""
    print "| H | dtype | instructions | per weight | int8-dynamic / this |"
    print "|---|---|---:|---:|---:|"
    split("fp32 int8 int8-dynamic int16x8", dts, " ")
    for (i = 1; i <= nh; i++) for (d = 1; d <= 4; d++) {
        h = hs[i]; dt = dts[d]; w = 8 * h * h; n = v[dt, h, "step"]
        if (n == "") continue
        printf "| %s | %s | %d | %.2f | %.2fx |\n", h, dt, n, n / w, v["int8-dynamic", h, "step"] / n
    }
    print ""
    print "Cortex-M0 int16x8 step by part (products = gemv_s16 over W_ih and W_hh; epilogue = lstm_int_layer less"
    print "the products, of which requant / activations / cell, measured apart; other = the step less the layer),"
    print "against the int8-dynamic step by kernel (instructions per call, share of the step):"
    print ""
    print "| H | int16x8 part | instructions | share | int8-dynamic kernel | instructions | share |"
    print "|---|---|---:|---:|---|---:|---:|"
    split("products epilogue requant activations cell other", ps, " ")
    split("matvec q8_gates cell quantize - -", ks, " ")
    split("products,epilogue,requant (in epilogue),activations (in epilogue),cell (in epilogue),other", names, ",")
    for (i = 1; i <= nh; i++) {
        h = hs[i]; si = v["int16x8", h, "step"]; sd = v["int8-dynamic", h, "step"]
        for (k = 1; k <= 6; k++) {
            a = v["int16x8", h, ps[k]]; b = (ks[k] == "-") ? "" : v["int8-dynamic", h, ks[k]]
            if (a == "") continue
            if (b == "") printf "| %s | %s | %d | %.0f%% | | | |\n", h, names[k], a, 100 * a / si
            else printf "| %s | %s | %d | %.0f%% | %s | %d | %.0f%% |\n", h, names[k], a, 100 * a / si, ks[k], b, 100 * b / sd
        }
        if (si != "") printf "| %s | step (lstm_step_int) | %d | | step (lstm_step) | %d | |\n", h, si, sd
        f = v["int16x8", h, "step_f32io"]
        if (f != "") printf "| %s | lstm_step (float in and out) | %d | | | | |\n", h, f
    }
}' "$OUT/m0.txt"
fi
