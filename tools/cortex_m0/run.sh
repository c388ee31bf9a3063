#!/bin/sh
# run.sh - build the Cortex-M0 count firmwares (count.c, one image per model: the microbit's 256 KB of
# flash holds one of them, its 16 KB of RAM none) and run them on qemu-system-arm -M microbit
# -icount shift=0 (tools/count_instructions.sh). Models: one layer, I = H, no head, H = 32 and 64, as
# fp32, int8 and int8-dynamic (gen_count_models.c on the host) and int16x8 (gen_int16x8_model.py: the
# converter, so $PYTHON must import torch and lstm_embed, its extension built).
# Usage: tools/cortex_m0/run.sh [build-dir] [count|build]   (default /tmp/lstm_cortex_m0_count, count)
#        PYTHON=/tmp/venv/bin/python tools/cortex_m0/run.sh
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SRC=${LSTM_SRC_DIR:-$ROOT/src/lstm_c}   # another copy of the C core: LSTM_SRC_DIR=/path
OUT=${1:-/tmp/lstm_cortex_m0_count}
WHAT=${2:-count}
TIMEOUT=${CORTEX_M0_TIMEOUT:-900}
HS="32 64"
DTYPES="fp32 int8 int8-dynamic int16x8"
PYTHON=${PYTHON:-python3}
CC=arm-none-eabi-gcc
CFLAGS="-std=c99 -O2 -g -Wall -Wextra -Werror -ffp-contract=off -fno-math-errno -fno-trapping-math
        -mcpu=cortex-m0 -mthumb -mfloat-abi=soft -ffunction-sections -fdata-sections
        -I$SRC -I$HERE -I$ROOT/tools/cortex_m4"
LDFLAGS="-T$HERE/link.ld -nostartfiles --specs=nano.specs -Wl,--gc-sections"
HOSTCC=${HOSTCC:-gcc}
mkdir -p "$OUT/obj" "$OUT/models"

# the host generator (the C core and tests/c/testlib.c, built for this machine)
$HOSTCC -std=c99 -O1 -Wall -Wextra -Werror -ffp-contract=off -I"$SRC" -I"$ROOT/tests/c" -I"$HERE" \
    "$HERE/gen_count_models.c" "$ROOT/tests/c/testlib.c" "$SRC"/*.c -lm -o "$OUT/gen_count_models"

LIB=""
for s in "$SRC"/*.c "$ROOT/tools/cortex_m4/startup.c" "$HERE/count.c" "$HERE/count_int.c"; do
    o="$OUT/obj/$(basename "$(dirname "$s")")_$(basename "$s" .c).o"
    $CC $CFLAGS -c "$s" -o "$o"
    LIB="$LIB $o"
done

IMAGES=""
for h in $HS; do
    for d in $DTYPES; do
        name="${d}_$h"
        if [ "$d" = int16x8 ]; then
            if ! PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" "$HERE/gen_int16x8_model.py" "$h" \
                    > "$OUT/models/$name.c"; then
                echo "run.sh: the int16x8 model needs $PYTHON with torch and lstm_embed (extension built in $ROOT);" \
                     "set PYTHON" >&2
                exit 1
            fi
        else
            "$OUT/gen_count_models" "$d" "$h" > "$OUT/models/$name.c"
        fi
        $CC $CFLAGS -c "$OUT/models/$name.c" -o "$OUT/obj/model_$name.o"
        # shellcheck disable=SC2086
        $CC $CFLAGS $LDFLAGS -Wl,-Map,"$OUT/$name.map" $LIB "$OUT/obj/model_$name.o" -lm -o "$OUT/count_$name.elf"
        IMAGES="$IMAGES $OUT/count_$name.elf"
    done
done

case "$WHAT" in
build) ;;
count)
    for img in $IMAGES; do
        timeout "$TIMEOUT" qemu-system-arm -M microbit -nographic -monitor none -serial none \
            -semihosting-config enable=on,target=native -icount shift=0 -kernel "$img"
    done ;;
*) echo "unknown action $WHAT" >&2; exit 2 ;;
esac
