#!/bin/sh
# run.sh - build the Cortex-M4 firmware images and run them on qemu-system-arm -M mps2-an386 (Cortex-M4F),
# or with CORTEX_M_CPU=cortex-m7 the same images for a Cortex-M7 on -M mps2-an500 (same memory map):
#   test_isa.elf  tests/c/test_isa.c on the bare-metal core: the DSP table (SXTB16 + SMLAD) against the
#                 reference, kernels and int8 / int8-dynamic / fp32 models
#   test_f32_panels.elf  tests/c/test_f32_panels.c: the fp32 panel kernels (VFMA chains) and run / step_many
#                 equal to steps, bit for bit
#   count.elf     tools/cortex_m4/count.c: instructions per LSTM step (tools/count_instructions.sh), with
#                 the int16x8 models of tools/cortex_m0/gen_int16x8_model.py (the converter: $PYTHON must
#                 import torch and lstm_embed, its extension built; built for count and build only)
# Usage: tools/cortex_m4/run.sh [build-dir] [test|count|build]   (default: build and run test_isa)
#        PYTHON=/tmp/venv/bin/python tools/cortex_m4/run.sh /tmp/m4 count
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SRC=${LSTM_SRC_DIR:-$ROOT/src/lstm_c}   # another copy of the C core: LSTM_SRC_DIR=/path
OUT=${1:-/tmp/lstm_cortex_m4}
WHAT=${2:-test}
TIMEOUT=${CORTEX_M4_TIMEOUT:-900}
CPU=${CORTEX_M_CPU:-cortex-m4}
case "$CPU" in
cortex-m4) MFLAGS="-mcpu=cortex-m4 -mfpu=fpv4-sp-d16" MACHINE=mps2-an386 ;;
cortex-m7) MFLAGS="-mcpu=cortex-m7 -mfpu=fpv5-sp-d16" MACHINE=mps2-an500 ;;
*) echo "CORTEX_M_CPU must be cortex-m4 or cortex-m7" >&2; exit 2 ;;
esac
CC=arm-none-eabi-gcc
CFLAGS="-std=c99 -O2 -g -Wall -Wextra -Werror -ffp-contract=off -fno-math-errno -fno-trapping-math
        $MFLAGS -mthumb -mfloat-abi=hard -ffunction-sections -fdata-sections
        -I$SRC -I$ROOT/tests/c -I$HERE -I$ROOT/tools/cortex_m0"
PYTHON=${PYTHON:-python3}
LDFLAGS="-T$HERE/link.ld -nostartfiles --specs=nano.specs -Wl,-u,_printf_float -Wl,--gc-sections -Wl,-Map,$OUT/map.txt"
mkdir -p "$OUT/obj"

compile() { # compile <source>...: objects into $OUT/obj, names printed
    for s in "$@"; do
        o="$OUT/obj/$(basename "$(dirname "$s")")_$(basename "$s" .c).o"
        $CC $CFLAGS -c "$s" -o "$o"
        echo "$o"
    done
}

LIB=$(compile "$SRC"/*.c "$HERE/startup.c" "$ROOT/tests/c/testlib.c")
TEST=$(compile "$ROOT/tests/c/test_isa.c")
PANELS=$(compile "$ROOT/tests/c/test_f32_panels.c")
# shellcheck disable=SC2086
$CC $CFLAGS $LDFLAGS $LIB $TEST -lm -o "$OUT/test_isa.elf"
if [ "$WHAT" != test ]; then
    mkdir -p "$OUT/models"
    for h in 32 64 128; do
        if ! PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" "$ROOT/tools/cortex_m0/gen_int16x8_model.py" \
                --prefix "count_i16_h$h" "$h" > "$OUT/models/int16x8_$h.c"; then
            echo "run.sh: the int16x8 models need $PYTHON with torch and lstm_embed (extension built in $ROOT);" \
                 "set PYTHON" >&2
            exit 1
        fi
    done
    COUNT=$(compile "$HERE/count.c" "$ROOT/tools/cortex_m0/count_int.c" "$OUT"/models/int16x8_*.c)
    # shellcheck disable=SC2086
    $CC $CFLAGS $LDFLAGS $LIB $COUNT -lm -o "$OUT/count.elf"
fi
# shellcheck disable=SC2086
$CC $CFLAGS $LDFLAGS $LIB $PANELS -lm -o "$OUT/test_f32_panels.elf"

QEMU="qemu-system-arm -M $MACHINE -nographic -monitor none -serial none
      -semihosting-config enable=on,target=native"
case "$WHAT" in
build) ;;
test) timeout "$TIMEOUT" $QEMU -kernel "$OUT/test_isa.elf" && timeout "$TIMEOUT" $QEMU -kernel "$OUT/test_f32_panels.elf" ;;
count) timeout "$TIMEOUT" $QEMU -icount shift=0 -kernel "$OUT/count.elf" ;;
*) echo "unknown action $WHAT" >&2; exit 2 ;;
esac
