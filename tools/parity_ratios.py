"""Every parity case's mean abs error vs float64 over PyTorch fp32's (issue 14; docs/accuracy.md): runs
tests/test_parity.py with its assert_parity replaced by one that records the ratio instead of asserting it,
then prints one line per call and the maximum per kernel table.

    PYTHONPATH=. python tools/parity_ratios.py [-k EXPR]

On a tree whose test_parity.py runs each test once per table (the `every_isa` fixture) the table is in the
test id ("isa=avx2"); on an older one, set LSTM_EMBED_ISA to choose it."""
import os
import re
import sys
from collections import defaultdict

import pytest

TESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests")
sys.path.insert(0, TESTS)
import test_parity as tp  # noqa: E402

RATIOS = []


def record(got, lstm, xs, head=None, activation=None):
    want_torch = tp.torch_outputs(lstm, xs, head, activation)
    want_ref = tp.reference(lstm, head, activation)(xs)
    ours, theirs = tp.mean_err(got, want_ref), tp.mean_err(want_torch, want_ref)
    RATIOS.append((os.environ.get("PYTEST_CURRENT_TEST", "?").split("::")[-1].split(" ")[0], ours / theirs))


tp.assert_parity = record


class Report:
    def pytest_sessionfinish(self):
        worst = defaultdict(float)
        for name, ratio in RATIOS:
            print(f"{ratio:6.3f}  {name}")
            m = re.search(r"isa=([a-z0-9_]+)", name)
            isa = m.group(1) if m else os.environ.get("LSTM_EMBED_ISA", "auto")
            worst[isa] = max(worst[isa], ratio)
        for isa, ratio in worst.items():
            print(f"max {ratio:.3f}  {isa}")


if __name__ == "__main__":
    sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", os.path.join(TESTS, "test_parity.py")] + sys.argv[1:],
                         plugins=[Report()]))
