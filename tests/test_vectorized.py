"""The elementwise kernels are vectorised by every compiler we support at the levels users build with
(-O2 and -O3), not only by the one and the level setup.py uses. They are portable C that the compiler must
vectorise (elementwise_impl.h); when it does not, they compute the same bits 5-8x slower, so no other test
notices. Before the fix GCC 12 at -O2 vectorised none of them (its "very cheap" cost model), and Clang 14
left the cell loops scalar (it could not prove that gates, c and h do not overlap).

Checked from the compilers' own reports (GCC -fopt-info-vec-optimized, Clang -Rpass=loop-vectorize) on
elementwise_x86.c: every loop of the vector form of the float cell update (quantised layers) is reported
vectorised at least twice (the AVX2 and the AVX-512 instantiation). The precise cell of fp32 layers is
written with intrinsics on these tables (cell_f32_x86.c), vectorised by construction."""
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "lstm_c"
IMPL = SRC / "elementwise_impl.h"
FLAGS = ["-std=c99", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math", "-D_GNU_SOURCE"]
COMPILERS = [c for c in dict.fromkeys([os.environ.get("CC", "cc"), "gcc", "clang", "clang-16"]) if shutil.which(c)]
FUNCTIONS = ("lstm_cell_update", "cell_state")

pytestmark = pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64") or not COMPILERS,
                                reason="needs x86-64 and a C compiler")


def loop_lines() -> list:
    """Line numbers of the `for` loops in the vector form of FUNCTIONS' bodies in elementwise_impl.h (the
    LSTM_EW_SCALAR branch, Cortex-M's, left out)."""
    lines = IMPL.read_text().splitlines()
    found, inside, scalar = [], False, False
    for number, line in enumerate(lines, 1):
        m = re.match(r"LSTM_EW_ATTR (?:static )?void LSTM_EW\((\w+)\)\(", line)
        if m:
            inside = m.group(1) in FUNCTIONS
            continue
        if inside and line.startswith("}"):
            inside = False
        if not inside:
            continue
        if line.startswith("#ifdef LSTM_EW_SCALAR"):
            scalar = True
        elif line.startswith(("#else", "#endif")):
            scalar = False
        elif not scalar and re.match(r"\s*for \(", line):
            found.append(number)
    return found


def vectorised_lines(cc: str, opt: str, tmp_path: Path) -> dict:
    """{line of elementwise_impl.h: how many loops there the compiler reports vectorised}"""
    clang = "clang" in subprocess.run([cc, "--version"], capture_output=True, text=True).stdout.lower()
    report = ["-Rpass=loop-vectorize"] if clang else ["-fopt-info-vec-optimized"]
    proc = subprocess.run([cc, *FLAGS, opt, *report, f"-I{SRC}", "-c", str(SRC / "elementwise_x86.c"), "-o",
                           str(tmp_path / "elementwise_x86.o")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    pattern = r"vectorized loop \(" if clang else r"optimized: loop vectorized"
    counts = {}
    for m in re.finditer(r"elementwise_impl\.h:(\d+):\d+: (?:remark|optimized): (.*)", proc.stderr):
        if re.search(pattern, m.group(0)):
            counts[int(m.group(1))] = counts.get(int(m.group(1)), 0) + 1
    return counts


def test_the_loops_are_found():
    assert len(loop_lines()) >= 4, loop_lines()  # the gate loops and the cell loop of the float cell update


@pytest.mark.parametrize("opt", ["-O2", "-O3"])
@pytest.mark.parametrize("cc", COMPILERS)
def test_cell_updates_are_vectorised(cc, opt, tmp_path):
    counts = vectorised_lines(cc, opt, tmp_path)
    scalar = [line for line in loop_lines() if counts.get(line, 0) < 2]
    assert not scalar, (f"{cc} {opt}: the loops at elementwise_impl.h lines {scalar} were not vectorised in both "
                        f"the AVX2 and the AVX-512 instantiation")
