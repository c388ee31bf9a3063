"""The benchmark's Markdown report and plot: machine, versions, threads, tables, ratios, targets."""
from __future__ import annotations

import ctypes
import glob
import importlib.metadata
import os
import platform
import subprocess

from bench_engines import ENGINES

OURS_FP32, OURS_INT8, OURS_DYN = "ours fp32", "ours int8", "ours int8-dynamic"
PACKAGES = ("lstm-embed", "numpy", "torch", "onnx", "onnxruntime", "ai-edge-litert", "flatbuffers",
            "scipy-openblas32", "matplotlib")
FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni",
         "avx512_bf16", "amx_int8")
ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
       "LSTM_EMBED_BLAS_THREADS", "LSTM_EMBED_ISA")


# ---- machine, versions, threads -----------------------------------------------------------------------

def _cpuinfo() -> dict:
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return info


def _caches() -> str:
    parts = []
    for index in sorted(glob.glob("/sys/devices/system/cpu/cpu0/cache/index*")):
        try:
            read = (lambda name: open(os.path.join(index, name)).read().strip())
            kind = {"Data": "d", "Instruction": "i", "Unified": ""}.get(read("type"), "")
            parts.append(f"L{read('level')}{kind} {read('size')}")
        except OSError:
            continue
    return ", ".join(parts) or "unknown"


def _openblas():
    import scipy_openblas32

    return ctypes.CDLL(os.path.join(scipy_openblas32.get_lib_dir(), scipy_openblas32.get_library(fullname=True)))


def _blas_core_and_threads() -> tuple:
    lib = _openblas()
    lib.scipy_openblas_get_corename.restype = ctypes.c_char_p
    return lib.scipy_openblas_get_corename().decode(), lib.scipy_openblas_get_num_threads()


def _compiler() -> str:
    try:
        return subprocess.run([os.environ.get("CC", "cc"), "--version"], capture_output=True, text=True,
                              timeout=30).stdout.splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "none"


def _int8_isa() -> str:
    """The instruction set our int8 kernels pick on this machine, from a tiny int8-dynamic model."""
    import torch

    import lstm_embed

    try:
        data = lstm_embed.convert_torch(torch.nn.LSTM(4, 4), dtype="int8-dynamic")
        return lstm_embed.Model.from_bytes(data).isa
    except Exception as e:  # the int8 modes are optional: say why there is no answer
        return f"n/a ({type(e).__name__}: {e})"


def machine_section() -> list:
    cpu = _cpuinfo()
    flags = set(cpu.get("flags", "").split())
    core, blas_threads = _blas_core_and_threads()
    env = ", ".join(f"{k}={os.environ[k]}" if k in os.environ else f"{k} unset" for k in ENV)
    return [
        "## Machine",
        "",
        f"- CPU: {cpu.get('model name', platform.processor() or 'unknown')} (family {cpu.get('cpu family', '?')}, "
        f"model {cpu.get('model', '?')}), {os.cpu_count()} logical CPUs; caches {_caches()}",
        f"- ISA flags: {' '.join(f for f in FLAGS if f in flags) or 'none of ' + ' '.join(FLAGS)}",
        f"- OS: {platform.platform()}; Python {platform.python_version()}; C compiler: {_compiler()}",
        f"- Environment: {env}",
        f"- OpenBLAS (scipy-openblas32) kernel set in use: {core}, {blas_threads} thread(s); "
        f"our int8 kernels: {_int8_isa()}",
        "",
    ]


def versions_section() -> list:
    import torch

    rows = []
    for name in PACKAGES:
        try:
            rows.append([name, importlib.metadata.version(name)])
        except importlib.metadata.PackageNotFoundError:
            rows.append([name, "not installed"])
    lines = ["## Versions", "", *_table(["package", "version"], rows), ""]
    lines.append(f"torch: quantized engine `{torch.backends.quantized.engine}`, oneDNN available: "
                 f"{torch.backends.mkldnn.is_available()}.")
    lines.append("")
    return lines


def threads_section() -> list:
    import torch

    _, blas_threads = _blas_core_and_threads()
    rows = [
        ["ours", f"OpenBLAS threads = {blas_threads} (scipy_openblas_get_num_threads)"],
        ["torch", f"torch.set_num_threads(1) -> {torch.get_num_threads()}, "
                  f"interop threads {torch.get_num_interop_threads()}"],
        ["onnxruntime", "SessionOptions intra_op_num_threads = 1, inter_op_num_threads = 1, sequential"],
        ["litert", "Interpreter(num_threads=1)"],
    ]
    return ["## Threads", "", *_table(["engine", "setting"], rows), ""]


def engines_section() -> list:
    rows = [[e.label, e.precision, e.what] for e in ENGINES]
    return ["## Engines", "", *_table(["engine", "weights", "what is timed"], rows), ""]


# ---- tables -------------------------------------------------------------------------------------------

def _table(header: list, rows: list) -> list:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _fmt(us: float) -> str:
    return f"{us:.3g}" if us < 1000 else f"{us:,.0f}"


def _median(section: dict, label: str, net: str):
    cell = section.get(label, {}).get(net)
    return cell.timing.median if cell is not None and cell.timing is not None else None


def _timing_table(section: dict, nets: list) -> list:
    """Engines × sizes: median (min–max), or the kind of note ("n/a", "WRONG", "failed") with a numbered
    footnote under the table, so a reason repeated across sizes is printed once."""
    notes: dict = {}

    def text(cell) -> str:
        if cell is None:
            return "—"
        if cell.timing is not None:
            t = cell.timing
            return f"**{_fmt(t.median)}** ({_fmt(t.low)}–{_fmt(t.high)})"
        kind, _, why = (cell.note or "n/a: no result").partition(": ")
        return f"{kind} [{notes.setdefault(why, len(notes) + 1)}]"

    lines = _table(["engine", *nets], [[label, *(text(section[label].get(n)) for n in nets)] for label in section])
    if notes:
        lines += ["", *(f"- [{number}] {why}" for why, number in notes.items())]
    return lines


def _best_peer(section: dict, net: str, precision: str):
    """(label, median) of the fastest peer (not ours) of ``precision`` at ``net``, or None."""
    best = None
    for e in ENGINES:
        m = _median(section, e.label, net)
        if not e.is_ours and e.precision == precision and m is not None and (best is None or m < best[1]):
            best = (e.label, m)
    return best


def _ratio_tables(section: dict, nets: list) -> list:
    lines = []
    for ours in (OURS_FP32, OURS_DYN, OURS_INT8):
        if not any(_median(section, ours, n) for n in nets):
            cell = next((c for c in section.get(ours, {}).values() if c.note), None)
            lines += [f"*{ours} / peer*: not measured ({cell.note if cell else 'no result'}).", ""]
            continue
        rows = []
        for e in ENGINES:
            if e.is_ours:
                continue
            row = [e.label]
            for n in nets:
                a, b = _median(section, ours, n), _median(section, e.label, n)
                row.append(f"{a / b:.2f}" if a and b else "—")
            rows.append(row)
        for precision in ("fp32", "int8"):
            row = [f"best {precision} peer"]
            for n in nets:
                a, best = _median(section, ours, n), _best_peer(section, n, precision)
                row.append(f"{a / best[1]:.2f} ({best[0]})" if a and best else "—")
            rows.append(row)
        lines += [f"*{ours} / peer* (lower is better; < 1 means ours is faster):", "",
                  *_table(["peer", *nets], rows), ""]
    return lines


def _accuracy_table(results) -> list:
    rows = []
    for e in ENGINES:
        row = [e.label]
        for n in results.nets:
            cell = results.step.get(e.label, {}).get(n)
            if cell is None or cell.error is None:
                row.append("n/a" if cell is None or cell.note.startswith("n/a") else "failed")
            else:
                row.append(f"{cell.error:.2g}" + ("" if cell.timing is not None else " (WRONG)"))
        rows.append(row)
    return _table(["engine", *results.nets], rows)


def _floor_table(results) -> list:
    rows = []
    for n in results.nets:
        floor = results.floor.get(n)
        if isinstance(floor, str):
            rows.append([n, "—", f"n/a: {floor}", "", "", "", "", ""])
            continue
        for dtype, f in floor.items():
            label = {"float32": OURS_FP32, "int8": OURS_INT8, "int8-dynamic": OURS_DYN}[dtype]
            if isinstance(f, str):
                rows.append([n, label, f"failed: {f}", "", "", "", "", ""])
                continue
            py = _median(results.step, label, n)
            c = f.step.median
            s = f.sgemv.median if f.sgemv else None
            rows.append([n, label, _fmt(py) if py else "—", f"{_fmt(c)} ({_fmt(f.step.low)}–{_fmt(f.step.high)})",
                         f"{py / c:.2f}" if py else "—", _fmt(s) if s else "—", f"{c / s:.2f}" if s else "—",
                         f"{f.weight_bytes / 2**20:.2f} MiB, {f.weight_bytes / (s or c) / 1e3:.0f} GB/s"])
    header = ["size", "engine", "Python step µs", "C lstm_step µs (min–max)", "Python / C",
              "CBLAS sgemv µs", "C step / sgemv", "weights, read rate of the fastest C loop"]
    return _table(header, rows)


# ---- targets ------------------------------------------------------------------------------------------

def _target(rows: list, name: str, net: str, ours, ref, goal: float, ref_label: str) -> None:
    """Append one target row: ours / ref against goal."""
    if ours is None or ref is None:
        missing = "ours" if ours is None else ref_label
        rows.append([name, net, "—", "—", f"≤ {goal:.3g}", f"n/a ({missing} not measured)"])
        return
    ratio = ours / ref
    rows.append([name, net, f"{_fmt(ours)} / {_fmt(ref)} ({ref_label})", f"{ratio:.2f}", f"≤ {goal:.3g}",
                 "met" if ratio <= goal else "**MISSED**"])


def targets_rows(results) -> list:
    rows = []
    step, nets = results.step, results.nets
    for n in nets:
        f = results.floor.get(n)
        f = f.get("float32") if isinstance(f, dict) else None
        c = f.step.median if f is not None and not isinstance(f, str) else None
        _target(rows, "fp32 step ≤ 1.2 × C floor", n, _median(step, OURS_FP32, n), c, 1.2, "C lstm_step")
    for n in nets:
        hidden, _ = results.hidden[n]
        best = _best_peer(step, n, "fp32")
        _target(rows, "fp32 step vs best fp32 peer", n, _median(step, OURS_FP32, n), best and best[1],
                0.5 if hidden <= 128 else 0.75, best[0] if best else "fp32 peers")
    for name, n, peer, goal in (("int8-dynamic step vs ORT int8 io_binding", "H=256", "ORT int8 io_binding", 0.4),
                                ("int8-dynamic step vs ORT int8 io_binding (issue 4)", "H=512",
                                 "ORT int8 io_binding", 1 / 1.5),
                                ("int8-dynamic step vs LiteRT hybrid", "H=64", "LiteRT hybrid int8", 0.12)):
        if n in nets:
            _target(rows, name, n, _median(step, OURS_DYN, n), _median(step, peer, n), goal, peer)
    for n in nets:
        _target(rows, "int8 step ≤ ours fp32 step (issue 4)", n, _median(step, OURS_INT8, n),
                _median(step, OURS_FP32, n), 1.0, OURS_FP32)
    for title, section, names in (("whole sequence", results.seq, nets),
                                  (f"{results.streams} streams", results.batch, [results.batch_label])):
        for ours, precision in ((OURS_FP32, "fp32"), (OURS_DYN, "int8")):
            for n in names:
                best = _best_peer(section, n, precision)
                _target(rows, f"{title}, {ours}: no {precision} peer faster", n, _median(section, ours, n),
                        best and best[1], 1.0, best[0] if best else f"{precision} peers")
    return rows


# ---- the report and the plot --------------------------------------------------------------------------

def render(results, meta: dict) -> str:
    plan = meta["plan"]
    streams, batch_net = results.streams, results.batch_label
    lines = [
        "# lstm_embed benchmark",
        "",
        f"Run `{meta['command']}` ({meta['mode']} mode) on {meta['when']}, {meta['seconds']:.0f} s. "
        f"Times are µs, **median** (min–max) over {plan.rounds} round(s) × samples of ≥ {plan.sample_ms:g} ms, "
        "engines interleaved in each round; every engine single-threaded.",
        "",
        *machine_section(), *versions_section(), *threads_section(), *engines_section(),
        "## Targets (issue 5, and the int8 speed targets of issue 4)",
        "",
        "Ratios are ours / reference, lower is better. The best peer is the fastest engine of another library "
        "with the same weight precision (fp32 for ours fp32, int8 for ours int8-dynamic) at that size.",
        "",
        *_table(["target", "size", "ours / reference (µs)", "ratio", "goal", "status"], targets_rows(results)),
        "",
        "## 1. Streaming step latency, batch 1, I = H (µs per step, from Python)",
        "",
        *_timing_table(results.step, results.nets),
        "",
        *_ratio_tables(results.step, results.nets),
        f"## 2. Whole sequence, T = {plan.seq_len} (µs per step: one call over the sequence / T)",
        "",
        *_timing_table(results.seq, results.nets),
        "",
        *_ratio_tables(results.seq, results.nets),
        f"## 3. {streams} streams stepped together at {batch_net} (µs per step of all {streams} streams)",
        "",
        f"Ours: `Model.step_many` over {streams} `Stream`s; the peers: batch dimension {streams}, state fed back.",
        "",
        *_timing_table(results.batch, [batch_net]),
        "",
        *_ratio_tables(results.batch, [batch_net]),
        "## 4. C floor (tools/bench_floor.c, single thread)",
        "",
        "`lstm_step` in a C loop, and one plain CBLAS sgemv per layer over the same [4H, in + H] weights "
        "read from the model file (the product every step must compute): the first ratio is the cost of "
        "calling from Python, the second the distance of the whole step to the bare matrix-vector product.",
        "",
        *_floor_table(results),
        "",
        "## 5. Accuracy (max abs error against PyTorch fp32)",
        "",
        f"Step path at batch 1 over {plan.check_steps} steps from a zero state, inputs N(0, 1), default "
        f"nn.LSTM initialisation. An engine is timed only within {meta['tolerance']['fp32']:g} (fp32) or "
        f"{meta['tolerance']['int8']:g} (int8); whole sequences and batches are checked the same way.",
        "",
        *_accuracy_table(results),
        "",
    ]
    return "\n".join(lines)


def plot(results, path: str, report_dir: str) -> str:
    """Step latency vs hidden size (one-layer models) for every timed engine, saved to ``path``; returns
    the Markdown line that shows it from a report in ``report_dir``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "\n(no plot: matplotlib is not installed)\n"
    nets = [n for n in results.nets if results.hidden[n][1] == 1]
    hs = [results.hidden[n][0] for n in nets]
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    colors = plt.get_cmap("tab20").colors
    for k, e in enumerate(ENGINES):
        ys = [_median(results.step, e.label, n) for n in nets]
        if not any(y is not None for y in ys):
            continue
        pts = [(h, y) for h, y in zip(hs, ys) if y is not None]
        style = dict(linewidth=2.8, marker="o", zorder=3) if e.is_ours else dict(linewidth=1.2, marker=".")
        ax.plot(*zip(*pts), label=e.label, color=colors[k % len(colors)],
                linestyle="-" if e.precision == "fp32" else "--", **style)
    floors = [(h, f["float32"].step.median) for h, n in zip(hs, nets)
              if isinstance(f := results.floor.get(n), dict) and not isinstance(f.get("float32", ""), str)]
    if floors:
        ax.plot(*zip(*floors), color="black", linestyle=":", linewidth=1.5, label="C floor: lstm_step fp32")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(hs, [str(h) for h in hs])
    ax.set_xlabel("hidden size H (I = H, one layer, batch 1)")
    ax.set_ylabel("µs per step (median)")
    ax.set_title("Streaming LSTM step latency from Python, single thread (lower is better)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7.5, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return f"\n![step latency vs hidden size]({os.path.relpath(os.path.abspath(path), report_dir)})\n"
