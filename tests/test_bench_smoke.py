"""Smoke test of tools/bench.py: ``--smoke`` runs, exits 0, prints and writes a report with the expected
sections and rows. Nothing here looks at how fast anything is.

The benchmark itself needs torch; every peer row must be there whether or not its package is installed
(the ``bench`` extra): timed, or a reason in its place (n/a: not installed / not run by --smoke, WRONG:
off in the accuracy check, failed: its error). Which peers are timed is checked only when their package is
installed, and a peer that is off in the accuracy check is never a test failure: that is the peer's
result, reported as such. The C floor and the read-bandwidth floor need a C compiler.
"""
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest

pytest.importorskip("torch", reason="tools/bench.py compares against PyTorch")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.join(ROOT, "tools")
PEERS = ("torch LSTM", "torch LSTM no-oneDNN", "torch LSTMCell", "torch dynamic int8", "ORT fp32 run",
         "ORT fp32 io_binding", "ORT int8 run", "ORT int8 io_binding", "LiteRT fp32", "LiteRT hybrid int8",
         "OpenVINO fp32", "ncnn fp32", "ncnn int8", "ExecuTorch XNNPACK")


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


def _timed_or_explained(section: str, label: str) -> None:
    """The engine's row has a median, or says why not ("n/a", "WRONG", "failed") with the footnote that
    holds the reason."""
    row = _row(section, label)
    if "**" in row:
        return
    marks = re.findall(r"(n/a|WRONG|failed) \[(\d+)\]", row)
    assert marks, f"{label}: neither timed nor explained: {row}"
    for _, number in marks:
        footnote = re.search(rf"^- \[{number}\] (.+)$", section, re.M)
        assert footnote and footnote.group(1).strip(), f"{label}: footnote [{number}] missing"


def _isas(report: str):
    """(best, supported) ISAs of ours as the report's Machine section gives them."""
    found = re.search(r"^- lstm_embed kernel paths \(supported_isas\): (.+); isa=\"auto\" picks: (\S+)$",
                      _section(report, "## Machine"), re.M)
    assert found, "the Machine section does not list our ISAs"
    return found.group(2), found.group(1).split()


def test_report_has_every_section(run):
    report, _, stdout = run
    for heading in ("## Machine", "## Versions", "## Threads", "## Targets per ISA", "## 1. Streaming step latency",
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


def test_every_simd_isa_has_rows_and_a_targets_table(run):
    """Ours under every ISA of the CPU in one run: rows of its own in the tables, and a targets table."""
    report = run[0]
    best, isas = _isas(report)
    step, targets = _section(report, "## 1. Streaming step latency"), _section(report, "## Targets per ISA")
    for isa in isas:
        heading = f"### {isa} "
        assert heading in targets, isa
        table = targets[targets.index(heading):].split("\n### ")[0]
        assert "fp32 C step ≤ 1.3 × read floor" in table, isa
        if isa in ("reference", "blas") and isa != best:  # timed in C only: their floor row, no peer rows
            continue
        suffix = "" if isa == best else f" [{isa}]"
        for dtype in ("fp32", "int8", "int8-dynamic"):
            _timed_or_explained(step, f"ours {dtype}{suffix}")
        assert _timed(step, f"ours fp32{suffix}"), isa
        assert "fp32 step vs best fp32 peer" in table, isa


def test_c_floor_beside_the_read_bandwidth_floor(run):
    """Section 4: the read bandwidth per cache level in GB/s, and each ISA's C step with its read floor."""
    if shutil.which(os.environ.get("CC", "cc")) is None:
        pytest.skip("no C compiler: the C floor is reported as n/a")
    floor = _section(run[0], "## 4. C floor")
    assert "read floor µs" in floor and "C step / floor" in floor
    caches = [line for line in floor.splitlines() if re.match(r"\| L[123] \|", line)]
    assert caches, "no cache level in the read-bandwidth table (the system reports no caches?)"
    for row in caches:
        assert re.search(r"\*\*\d+\*\*", row), f"no GB/s figure: {row}"
    assert "n/a: not measured in --smoke mode" in _row(floor, "DRAM")
    _, isas = _isas(run[0])
    for isa in isas:
        rows = [line for line in floor.splitlines() if line.startswith(f"| H=64 | {isa} | ours fp32")]
        assert rows, f"no C floor row for {isa}"
        cells = [c.strip() for c in rows[0].strip("|").split("|")]
        assert re.match(r"[\d.,]+ \((L[123]|DRAM)(–(L[23]|DRAM))?, \d+ GB/s, \d+-bit\)", cells[5]), cells
        assert float(cells[6]) > 0, cells  # C step / floor


def test_every_peer_is_timed_or_says_why(run):
    """Each peer has a row in every table: a median, or n/a / WRONG / failed with the reason beneath."""
    report = run[0]
    for heading in ("## 1. Streaming step latency", "## 2. Whole sequence", "## 3. "):
        section = _section(report, heading)
        for label in PEERS:
            _timed_or_explained(section, label)
    engines = _section(report, "## Engines")
    for label in PEERS:
        _row(engines, label)


def test_plot_is_written(run):
    pytest.importorskip("matplotlib", reason="the plot needs matplotlib")
    plot = run[1]
    with open(plot, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def _checked_or_wrong(report: str, label: str) -> None:
    """An installed peer was run: timed, or reported off in the accuracy check (its result, not ours)."""
    step = _section(report, "## 1. Streaming step latency")
    row = _row(step, label)
    assert "**" in row or "WRONG [" in row, f"{label} is installed but was not run: {row}"


@pytest.mark.skipif(not _installed("onnxruntime", "onnx"), reason="onnxruntime / onnx not installed")
def test_onnxruntime_rows(run):
    for label in ("ORT fp32 run", "ORT fp32 io_binding", "ORT int8 run", "ORT int8 io_binding"):
        _checked_or_wrong(run[0], label)


@pytest.mark.skipif(not _installed("ai_edge_litert", "flatbuffers"), reason="ai-edge-litert not installed")
def test_litert_rows(run):
    for label in ("LiteRT fp32", "LiteRT hybrid int8"):
        _checked_or_wrong(run[0], label)


@pytest.mark.skipif(not _installed("openvino", "onnx"), reason="openvino / onnx not installed")
def test_openvino_row(run):
    _checked_or_wrong(run[0], "OpenVINO fp32")


@pytest.mark.skipif(not _installed("ncnn"), reason="ncnn not installed")
def test_ncnn_rows(run):
    for label in ("ncnn fp32", "ncnn int8"):
        _checked_or_wrong(run[0], label)
    assert "no batch dimension" in _section(run[0], "## 3. ")


def test_executorch_is_left_to_the_longer_modes(run):
    """--smoke does not import executorch (~30 s); the row says so."""
    step = _section(run[0], "## 1. Streaming step latency")
    assert "n/a [" in _row(step, "ExecuTorch XNNPACK")
    assert "not run by --smoke" in step


def test_a_peer_off_in_the_check_is_reported_not_timed(monkeypatch):
    """An engine whose outputs are off is not timed and says by how much, in every table it is missing
    from and in the accuracy table; the benchmark goes on (here with a fake peer, no subprocess)."""
    monkeypatch.syspath_prepend(TOOLS)
    import numpy as np

    import bench
    import bench_report

    class OffRunner:
        """A peer whose every output is 0.27 too high."""
        no_run = "no sequence API"
        out = None

        def context(self):
            import contextlib
            return contextlib.nullcontext()

        def reset(self):
            pass

        def feed(self, x):
            return x

        def step(self, x, out):
            return np.full((1, 4), 0.27, np.float32)

    xs = np.zeros((5, 1, 4), np.float32)
    ref = np.zeros((5, 1, 4), np.float32)
    cell = bench._check_steps(OffRunner(), xs, ref)
    assert not bench._checked(cell, "int8")
    assert cell.note.startswith("WRONG: off by 0.27") and cell.note.endswith("not timed")
    table = "\n".join(bench_report._timing_table({"peer": {"H=4": cell}}, ["H=4"]))
    assert "| peer | WRONG [1] |" in table and "- [1] off by 0.27" in table


@pytest.mark.skipif(sys.platform != "linux" or shutil.which("cc") is None, reason="an LD_PRELOAD shim for Linux")
def test_noamx_shim_refuses_only_the_amx_permission_request(tmp_path):
    """tools/noamx.c (``bench.py --no-amx``): the AMX permission request fails with EPERM; other syscalls, and
    other arch_prctl requests, go through."""
    shim = tmp_path / "noamx.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", os.path.join(TOOLS, "noamx.c"), "-o", str(shim), "-ldl"],
                   check=True)
    probe = ("import ctypes, os\n"
             "libc = ctypes.CDLL(None, use_errno=True)\n"
             "req = libc.syscall(158, 0x1023, 18)\n"  # SYS_arch_prctl (x86-64), ARCH_REQ_XCOMP_PERM, XTILEDATA
             "err = ctypes.get_errno()\n"
             "bits = ctypes.c_uint64(0)\n"
             "get = libc.syscall(158, 0x1022, ctypes.byref(bits))\n"  # ARCH_GET_XCOMP_PERM: passed through
             "print(req, err, get, libc.syscall(39) == os.getpid())\n")  # SYS_getpid
    if os.uname().machine != "x86_64":
        pytest.skip("the probe uses x86-64 syscall numbers")
    env = dict(os.environ, LD_PRELOAD=str(shim))
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True).stdout
    req, err, get, pid_ok = out.split()
    assert (int(req), int(err)) == (-1, 1)  # EPERM
    assert int(get) in (0, -1) and pid_ok == "True"  # ARCH_GET_XCOMP_PERM is answered by the kernel (or ENOSYS/EINVAL on old ones)


def _cpu_flags() -> set:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


@pytest.mark.skipif(sys.platform != "linux" or os.uname().machine != "x86_64" or shutil.which("cc") is None,
                    reason="an LD_PRELOAD shim for Linux on x86-64")
def test_avx2only_shim_hides_avx512_vnni_and_amx_from_every_library(tmp_path):
    """tools/avx2only.c (``bench.py --cpu avx2``): CPUID, trapped through CPUID faulting, answers without
    AVX-512, AVX-VNNI and AMX, so our dispatch, NumPy and PyTorch all pick their AVX2 code; AVX2 itself stays;
    a real segmentation fault still ends the process (also with a handler installed after the shim's)."""
    flags = _cpu_flags()
    if "cpuid_fault" not in flags or "avx2" not in flags:
        pytest.skip("needs AVX2 and CPUID faulting (cpuid_fault in /proc/cpuinfo)")
    shim = tmp_path / "avx2only.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", os.path.join(TOOLS, "avx2only.c"), "-o", str(shim), "-ldl"],
                   check=True)
    env = dict(os.environ, LD_PRELOAD=str(shim))
    probe = ("import json, lstm_embed, torch\n"
             "from numpy._core._multiarray_umath import __cpu_features__ as f\n"
             "print(json.dumps([lstm_embed.supported_isas(), lstm_embed.best_isa(), f['AVX512F'], f['AVX2'],\n"
             "                  f['FMA3'], torch.backends.cpu.get_cpu_capability()]))\n")
    # cwd: not the source tree, whose lstm_embed/ (without the built extension in a clean clone) would shadow
    # the installed package
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    isas, best, np_avx512f, np_avx2, np_fma, torch_cap = json.loads(out.stdout.splitlines()[-1])
    assert "avx2" in isas and best == "avx2"
    assert not any(i.startswith(("avx512", "amx")) or i == "avx2_vnni" for i in isas), isas
    assert (np_avx512f, np_avx2, np_fma) == (False, True, True)
    assert torch_cap == "AVX2"
    crash = "import ctypes; ctypes.string_at(0)"
    for extra in ([], ["-X", "faulthandler"]):
        done = subprocess.run([sys.executable, *extra, "-c", crash], env=env, capture_output=True, text=True,
                              timeout=60, cwd=tmp_path)
        assert done.returncode == -signal.SIGSEGV, (extra, done.returncode, done.stderr)
    assert "Segmentation fault" in done.stderr  # faulthandler's handler ran, chained behind the shim's
