"""The C core built and tested without Python: runs tests/c/Makefile in each configuration (portable loops;
the same under AddressSanitizer and UndefinedBehaviorSanitizer; OpenBLAS from the scipy-openblas32 wheel),
so the project's one test command covers the C test suite too."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import scipy_openblas32

C_TESTS = Path(__file__).parent / "c"
CC = os.environ.get("CC", "cc")

pytestmark = pytest.mark.skipif(
    shutil.which("make") is None or shutil.which(CC) is None,
    reason=f"building the C tests needs `make` and a C compiler (`{CC}`), and one of them is missing",
)


def run_configuration(target, *variables):
    """Build and run one configuration; fail with the whole output unless every C test passed."""
    cmd = ["make", "-C", str(C_TESTS), "-j2", target, *variables]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    output = proc.stdout
    assert proc.returncode == 0, f"`{' '.join(cmd)}` exited with {proc.returncode}:\n{output}"
    # every test program ran to its summary line, with no failure
    summaries = re.findall(r"^(\d+) passed, (\d+) failed$", output, re.MULTILINE)
    programs = sorted(C_TESTS.glob("test_*.c"))
    assert len(summaries) == len(programs), f"expected {len(programs)} summary lines:\n{output}"
    assert all(int(failed) == 0 and int(passed) > 0 for passed, failed in summaries), output


def test_c_portable():
    run_configuration("test-none")


def test_c_sanitizers():
    run_configuration("test-asan")


def test_c_openblas():
    run_configuration(
        "test-scipy",
        f"OPENBLAS_INC={scipy_openblas32.get_include_dir()}",
        f"OPENBLAS_LIB={scipy_openblas32.get_lib_dir()}",
    )


def xcheck_lines(build_name, *variables):
    """Build and run tests/c/xcheck (fixed fp32, int8-dynamic and int16x8 models over a fixed input
    sequence); returns {kind: [[bits of each output] per step]}: "fp32", "int8dyn" and "int16x8f" float
    bit patterns, "int16x8" lstm_step_int's int16 outputs."""
    cmd = ["make", "-C", str(C_TESTS), "-j2", "xcheck", f"BUILD_NAME={build_name}", *variables]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout
    run = subprocess.run([str(C_TESTS / "build" / build_name / "xcheck" / "xcheck")], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = {}
    for line in run.stdout.splitlines():
        model, rest = line.split(" t=", 1)
        lines.setdefault(model, []).append([int(v, 16) for v in rest.split(":", 1)[1].split()])
    assert set(lines) == {"fp32", "int8dyn", "int16x8", "int16x8f"}, run.stdout
    assert all(len(v) == 16 for v in lines.values()), run.stdout
    return lines


def as_floats(rows):
    import numpy as np

    return np.array(rows, dtype=np.uint32).view(np.float32)


def test_c_same_results_with_and_without_simd():
    """The SIMD kernels this CPU picks against the portable ones (-DLSTM_NO_SIMD, what aarch64, armhf and
    Cortex-M run bit for bit, see .ci/cross.sh): fp32 within float rounding; int8-dynamic and int16x8
    (integer and float entry points) bit-identical, as lstm.h promises."""
    import numpy as np

    simd = xcheck_lines("xcheck-simd")
    portable = xcheck_lines("xcheck-portable", "EXTRA_CFLAGS=-DLSTM_NO_SIMD")
    np.testing.assert_allclose(as_floats(simd["fp32"]), as_floats(portable["fp32"]), rtol=1e-5, atol=1e-6)
    diff = np.abs(as_floats(simd["int8dyn"]) - as_floats(portable["int8dyn"])).max()
    assert simd["int8dyn"] == portable["int8dyn"], (
        f"int8-dynamic results differ between the SIMD and portable kernels (max {diff:.2g}): "
        "lstm.h promises identical bits")
    for kind in ("int16x8", "int16x8f"):
        assert simd[kind] == portable[kind], f"{kind} results differ between the SIMD and portable kernels"
