#!/usr/bin/env python3
"""Generate the two 513-entry tables of the int16x8 integer step (docs/int16x8.md).

    T[k] = round_half_even(32767 * tanh(k / 64)),  k = 0 .. 512   (tanh and sigmoid, Q0.15)
    E[k] = round_half_even(32767 * exp(-k / 32)),  k = 0 .. 512   (the softmax exponential, Q0.15)

Computed in float64; prints the C arrays that src/lstm_c/int_math.c holds (paste them there). The C test
tests/c/test_int.c recomputes both tables from double tanh/exp and compares them entry by entry.

    python tools/gen_int_tables.py > /tmp/tables.c
"""
from __future__ import annotations

import math

TABLE_SIZE = 513


def tanh_table() -> list[int]:
    """T[k] = round_half_even(32767 * tanh(k / 64)) for k = 0 .. 512."""
    return [round(32767.0 * math.tanh(k / 64.0)) for k in range(TABLE_SIZE)]


def exp_table() -> list[int]:
    """E[k] = round_half_even(32767 * exp(-k / 32)) for k = 0 .. 512."""
    return [round(32767.0 * math.exp(-k / 32.0)) for k in range(TABLE_SIZE)]


def c_array(name: str, values: list[int], comment: str) -> str:
    """One `static const int16_t name[513]` definition, 16 values a line."""
    lines = [f"/* {comment} */", f"static const int16_t {name}[{len(values)}] = {{"]
    for i in range(0, len(values), 16):
        lines.append("    " + ", ".join(str(v) for v in values[i:i + 16]) + ",")
    lines.append("};")
    return "\n".join(lines)


def main() -> None:
    """Print both tables as C (Python's round() is round-half-even, as the specification says)."""
    print(c_array("lstm_tanh_table", tanh_table(), "T[k] = round_half_even(32767 * tanh(k / 64)), k = 0 .. 512"))
    print()
    print(c_array("lstm_exp_table", exp_table(), "E[k] = round_half_even(32767 * exp(-k / 32)), k = 0 .. 512"))


if __name__ == "__main__":
    main()
