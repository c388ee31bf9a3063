"""Smoke test of tools/bench.py: ``--smoke`` runs, exits 0, prints and writes a report with the expected
sections and rows. Nothing here looks at how fast anything is.

The benchmark itself needs torch; the ONNX Runtime and LiteRT rows are checked only when those packages
are installed (the ``bench`` extra), otherwise those tests skip and ours vs torch is still exercised.
"""
import importlib.util
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch", reason="tools/bench.py compares against PyTorch")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _installed(*modules):
    try:
        return all(importlib.util.find_spec(m) is not None for m in modules)
    except ImportError:  # a broken or partly removed installation
        return False


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One ``--smoke`` run shared by the tests: (report text, plot path, stdout)."""
    out = tmp_path_factory.mktemp("bench") / "bench.md"
    plot = out.with_suffix(".png")
    done = subprocess.run([sys.executable, os.path.join("tools", "bench.py"), "--smoke", "--out", str(out),
                           "--plot", str(plot)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return out.read_text(), plot, done.stdout


def _section(report: str, heading: str) -> str:
    start = report.index(heading)
    end = report.find("\n## ", start + len(heading))
    return report[start:] if end < 0 else report[start:end]


def _row(section: str, label: str) -> str:
    rows = [line for line in section.splitlines() if line.startswith(f"| {label} |")]
    assert rows, f"no row {label!r} in:\n{section}"
    return rows[0]


def _timed(section: str, label: str) -> bool:
    """Whether the engine's row holds a measured median (it passed the accuracy check and was timed)."""
    return "**" in _row(section, label)


def test_report_has_every_section(run):
    report, _, stdout = run
    for heading in ("## Machine", "## Versions", "## Threads", "## Targets", "## 1. Streaming step latency",
                    "## 2. Whole sequence", "## 3. ", "## 4. C floor", "## 5. Accuracy"):
        assert heading in report
    assert "OPENBLAS_CORETYPE" in _section(report, "## Machine")
    assert report.strip() in stdout  # printed as well as written


def test_ours_and_torch_are_checked_and_timed(run):
    report = run[0]
    step = _section(report, "## 1. Streaming step latency")
    for label in ("ours fp32", "torch LSTM", "torch LSTM no-oneDNN", "torch LSTMCell", "torch dynamic int8"):
        assert _timed(step, label), label
    for label in ("ours int8", "ours int8-dynamic"):  # measured, or n/a with a reason until they exist
        _row(step, label)
    assert _timed(_section(report, "## 2. Whole sequence"), "ours fp32")
    assert _timed(_section(report, "## 3. "), "ours fp32")
    assert "| best fp32 peer |" in step
    accuracy = _section(report, "## 5. Accuracy")
    assert "WRONG" not in _row(accuracy, "ours fp32")
    assert "fp32 step vs best fp32 peer" in _section(report, "## Targets")


def test_c_floor_row(run):
    floor = _section(run[0], "## 4. C floor")
    assert "| H=64 |" in floor


def test_plot_is_written(run):
    pytest.importorskip("matplotlib", reason="the plot needs matplotlib")
    plot = run[1]
    with open(plot, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(not _installed("onnxruntime", "onnx"), reason="onnxruntime / onnx not installed")
def test_onnxruntime_rows(run):
    step = _section(run[0], "## 1. Streaming step latency")
    for label in ("ORT fp32 run", "ORT fp32 io_binding", "ORT int8 run", "ORT int8 io_binding"):
        assert _timed(step, label), label


@pytest.mark.skipif(not _installed("ai_edge_litert", "flatbuffers"), reason="ai-edge-litert not installed")
def test_litert_rows(run):
    step = _section(run[0], "## 1. Streaming step latency")
    for label in ("LiteRT fp32", "LiteRT hybrid int8"):
        assert _timed(step, label), label
