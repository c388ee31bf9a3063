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
