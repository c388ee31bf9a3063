"""The benchmark's Markdown report and plot: machine, versions, threads, tables, ratios, targets."""
from __future__ import annotations

import ctypes
import glob
import importlib.metadata
import os
import platform
import subprocess
import sys

from bench_engines import ENGINES, ours_label
from machine_info import cpuinfo

OURS_FP32, OURS_INT8, OURS_DYN = "ours fp32", "ours int8", "ours int8-dynamic"
FLOOR_GOAL = 1.3  # issue 11: every fp32 C step within 1.3x of the read-bandwidth floor
# The widest loads each ISA's kernels issue: its floor is the read bandwidth at that width ("reference" is
# portable C, which the compiler vectorises with the baseline SSE2 of x86-64 at most).
ISA_LOAD_BITS = {"avx512_vnni": 512, "amx_int8": 512, "avx2": 256, "avx2_vnni": 256, "reference": 128, "neon": 128,
                 "neon_dot": 128, "cortex_m_dsp": 32}
BLAS_LOAD_BITS = {"SkylakeX": 512, "Cooperlake": 512, "SapphireRapids": 512, "Haswell": 256, "Zen": 256}
PACKAGES = ("lstm-embed", "numpy", "torch", "onnx", "onnxruntime", "ai-edge-litert", "flatbuffers", "openvino",
            "ncnn", "executorch", "scipy-openblas32", "matplotlib")
FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni",
         "avx512_bf16", "amx_int8")
ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
       "LSTM_EMBED_BLAS_THREADS", "LSTM_EMBED_ISA")


# ---- machine, versions, threads -----------------------------------------------------------------------

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


def _supported_isas() -> list:
    import lstm_embed

    return lstm_embed.supported_isas()


def _best_isa() -> str:
    import lstm_embed

    return lstm_embed.best_isa()


def machine_section() -> list:
    cpu = cpuinfo()
    flags = set(cpu.get("flags", "").split())
    core, blas_threads = _blas_core_and_threads()
    env = ", ".join(f"{k}={os.environ[k]}" if k in os.environ else f"{k} unset" for k in ENV)
    return [
        "## Machine",
        "",
        f"- CPU: {cpu.get('model name', platform.processor() or 'unknown')} (family {cpu.get('cpu family', '?')}, "
        f"model {cpu.get('model', '?')}), {os.cpu_count()} logical CPUs; caches {_caches()}",
        f"- ISA flags: {' '.join(f for f in FLAGS if f in flags) or 'none of ' + ' '.join(FLAGS)}"
        + (" — **AMX refused to every engine** (`--no-amx`: tools/noamx.c preloaded, as on a CPU without AMX)"
           if os.environ.get("LSTM_BENCH_NO_AMX") == "1" else "")
        + (" — **every engine saw an AVX2-only CPU** (`--cpu avx2`: tools/avx2only.c preloaded; CPUID answered "
           "without AVX-512, AVX-VNNI and AMX, as on AMD Zen 2/3 or Intel Haswell to Comet Lake; the flags "
           "above are the hardware's)" if os.environ.get("LSTM_BENCH_CPU") == "avx2" else ""),
        f"- OS: {platform.platform()}; Python {platform.python_version()}; C compiler: {_compiler()}",
        f"- Environment: {env}",
        f"- OpenBLAS (scipy-openblas32) kernel set in use: {core}, {blas_threads} thread(s); "
        f"our int8 kernels: {_int8_isa()}",
        f"- lstm_embed kernel paths (supported_isas): {' '.join(_supported_isas())}; isa=\"auto\" picks: "
        f"{_best_isa()}",
        "",
    ]


def versions_section() -> list:
    import torch

    rows = []
    for name in PACKAGES:
        if name == "lstm-embed":  # the imported package itself: a stale *.egg-info of a source tree can lie
            import lstm_embed

            rows.append([name, f"{lstm_embed.__version__} (C library {lstm_embed.c_version()})"])
            continue
        try:
            rows.append([name, importlib.metadata.version(name)])
        except importlib.metadata.PackageNotFoundError:
            rows.append([name, "not installed"])
    lines = ["## Versions", "", *_table(["package", "version"], rows), ""]
    lines.append(f"torch: quantized engine `{torch.backends.quantized.engine}`, oneDNN available: "
                 f"{torch.backends.mkldnn.is_available()}.")
    lines.append("")
    return lines


def _openvino_config() -> dict:
    from bench_engines import OPENVINO_CONFIG

    return OPENVINO_CONFIG


def _executorch_threads() -> str:
    """ExecuTorch's thread-pool size as the runner left it (after resetting it to 1); "n/a" when this run
    did not load its runtime (importing it costs ~20 s, so the report does not do it on its own)."""
    portable_lib = sys.modules.get("executorch.extension.pybindings.portable_lib")
    if portable_lib is None:
        return "not read back (its runtime was not loaded in this run)"
    return f"{portable_lib._threadpool_get_thread_count()} thread(s)"


def threads_section() -> list:
    import torch

    _, blas_threads = _blas_core_and_threads()
    rows = [
        ["ours", f"OpenBLAS threads = {blas_threads} (scipy_openblas_get_num_threads)"],
        ["torch", f"torch.set_num_threads(1) -> {torch.get_num_threads()}, "
                  f"interop threads {torch.get_num_interop_threads()}"],
        ["onnxruntime", "SessionOptions intra_op_num_threads = 1, inter_op_num_threads = 1, sequential"],
        ["litert", "Interpreter(num_threads=1)"],
        ["openvino", f"compile_model(..., \"CPU\", {_openvino_config()})"],
        ["ncnn", "Net.opt.num_threads = 1 (fp16/bf16 storage and arithmetic off)"],
        ["executorch", f"portable_lib._unsafe_reset_threadpool(1) -> {_executorch_threads()}"],
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


def load_bits(isa: str, blas_core: str, measured: dict) -> int | None:
    """The load width (bits) whose read bandwidth is the floor of ``isa``'s kernels: the widest measured
    width not above what the ISA loads (``blas``: what the OpenBLAS kernel set ``blas_core`` loads)."""
    want = BLAS_LOAD_BITS.get(blas_core, 128) if isa == "blas" else ISA_LOAD_BITS.get(isa, 128)
    widths = sorted(measured)
    if not widths:
        return None
    fitting = [b for b in widths if b <= want]
    return fitting[-1] if fitting else widths[0]


def read_floor(f, isa: str) -> tuple | None:
    """(µs, load bits) of the read floor of ``isa`` for the Floor ``f``, or None when not measured. The
    floor is the fastest pass over the weight bytes: what the hardware can do (a slower sample is load
    from elsewhere, and the C step's median is compared against the bound, not against another median)."""
    bits = load_bits(isa, f.blas_core, f.read)
    return (f.read[bits].low, bits) if bits else None


def _gbs(nbytes: int, us: float) -> str:
    return f"{nbytes / us / 1e3:.0f} GB/s"


def _levels_table(results) -> list:
    if isinstance(results.levels, str):
        return [f"Read bandwidth not measured: {results.levels}"]
    widths = sorted({b for lv in results.levels for b in lv.read}, reverse=True)
    rows = []
    for lv in results.levels:
        size = f"{lv.capacity / 2**10:,.0f} KiB" if lv.capacity else "—"
        row = [lv.name, size, f"{lv.buffer_bytes / 2**10:,.0f} KiB"]
        for b in widths:
            t = lv.read.get(b)
            row.append(f"**{lv.buffer_bytes / t.low / 1e3:.0f}** (median {lv.buffer_bytes / t.median / 1e3:.0f})"
                       if t else (f"n/a: {lv.note}" if lv.note else "—"))
        rows.append(row)
    header = ["level", "capacity", "buffer", *(f"GB/s, {b}-bit loads: best (median)" for b in widths)]
    return _table(header, rows)


def _floor_table(results) -> list:
    rows = []
    blank = ["", "", "", "", "", "", ""]
    for n in results.nets:
        floor = results.floor.get(n)
        if isinstance(floor, str):
            rows.append([n, "—", "—", f"n/a: {floor}", *blank])
            continue
        for dtype, f in floor.items():
            if isinstance(f, str):
                rows.append([n, "—", ours_label(dtype), f"failed: {f}", *blank])
                continue
            s = f.sgemv.median if f.sgemv else None
            where = level_of_bytes(f.weight_bytes, results.caches)
            for isa, t in f.step.items():
                label = ours_label(dtype, isa)
                py = _median(results.step, label, n)  # None for the ISAs timed in C only
                c = t.median
                rf = read_floor(f, isa)
                floor_text = (f"{_fmt(rf[0])} ({where}, {_gbs(f.weight_bytes, rf[0])}, {rf[1]}-bit)" if rf
                              else f"n/a: {f.read_error or 'not measured'}")
                rows.append([n, isa, label, _fmt(py) if py else "—", f"{_fmt(c)} ({_fmt(t.low)}–{_fmt(t.high)})",
                             floor_text, f"{c / rf[0]:.2f}" if rf else "—", f"{py / c:.2f}" if py else "—",
                             _fmt(s) if s else "—", f"{c / s:.2f}" if s else "—",
                             f"{f.weight_bytes / 2**20:.2f} MiB"])
    header = ["size", "ISA", "engine", "Python step µs", "C lstm_step µs (min–max)",
              "read floor µs (level, GB/s, loads)", "C step / floor", "Python / C", "CBLAS sgemv µs",
              "C step / sgemv", "weights"]
    return _table(header, rows)


def level_of_bytes(nbytes: int, caches: dict) -> str:
    """Where ``nbytes`` read again and again live: the first cache level that holds them with room to
    spare (3/4 of it: the rest goes to other data and conflict misses), "L2–L3" when they fill between
    3/4 and all of L2 (partly spilled), "DRAM" when no cache holds them."""
    names = [name for name in ("L1", "L2", "L3") if name in caches] + ["DRAM"]
    for name, above in zip(names, names[1:]):
        if nbytes <= caches[name] * 3 // 4:
            return name
        if nbytes <= caches[name]:
            return f"{name}–{above}"
    return "DRAM"


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


def _c_step(results, n: str, dtype: str, isa: str):
    """The Floor of ``dtype`` at ``n`` and its C step median under ``isa`` (None, None when absent)."""
    f = results.floor.get(n)
    f = f.get(dtype) if isinstance(f, dict) else None
    if f is None or isinstance(f, str) or isa not in f.step:
        return None, None
    return f, f.step[isa].median


def targets_rows(results, isa: str) -> list:
    """The targets of issues 4, 5 and 11 for ours with ``isa``'s kernels (the rows of that ISA)."""
    fp32, int8, dyn = (ours_label(d, isa) for d in ("float32", "int8", "int8-dynamic"))
    rows = []
    step, nets = results.step, results.nets
    for n in nets:
        f, c = _c_step(results, n, "float32", isa)
        rf = read_floor(f, isa) if f is not None else None
        where = level_of_bytes(f.weight_bytes, results.caches) if f is not None else "?"
        _target(rows, f"fp32 C step ≤ {FLOOR_GOAL} × read floor (issue 11)", n, c, rf and rf[0], FLOOR_GOAL,
                f"read floor, {where}")
    if isa in ("reference", "blas") and isa != results.best_isa:  # timed in C only
        return rows
    for n in nets:
        _, c = _c_step(results, n, "float32", isa)
        _target(rows, "fp32 step ≤ 1.2 × C floor", n, _median(step, fp32, n), c, 1.2, "C lstm_step")
    for n in nets:
        hidden, _ = results.hidden[n]
        best = _best_peer(step, n, "fp32")
        _target(rows, "fp32 step vs best fp32 peer", n, _median(step, fp32, n), best and best[1],
                0.5 if hidden <= 128 else 0.75, best[0] if best else "fp32 peers")
    for name, n, peer, goal in (("int8-dynamic step vs ORT int8 io_binding", "H=256", "ORT int8 io_binding", 0.4),
                                ("int8-dynamic step vs ORT int8 io_binding (issue 4)", "H=512",
                                 "ORT int8 io_binding", 1 / 1.5),
                                ("int8-dynamic step vs LiteRT hybrid", "H=64", "LiteRT hybrid int8", 0.12)):
        if n in nets:
            _target(rows, name, n, _median(step, dyn, n), _median(step, peer, n), goal, peer)
    for n in nets:
        _target(rows, "int8 step ≤ ours fp32 step (issue 4)", n, _median(step, int8, n),
                _median(step, fp32, n), 1.0, fp32)
    for title, section, names in (("whole sequence", results.seq, nets),
                                  (f"{results.streams} streams", results.batch, [results.batch_label])):
        for ours, precision in ((fp32, "fp32"), (dyn, "int8")):
            for n in names:
                best = _best_peer(section, n, precision)
                _target(rows, f"{title}, {ours}: no {precision} peer faster", n, _median(section, ours, n),
                        best and best[1], 1.0, best[0] if best else f"{precision} peers")
    return rows


def _targets_section(results) -> list:
    """One targets table per ISA of ours: the SIMD paths in full, reference and blas for the floor only."""
    header = ["target", "size", "ours / reference (µs)", "ratio", "goal", "status"]
    order = [results.best_isa] + [i for i in results.isas if i != results.best_isa]
    lines = []
    for isa in order:
        if isa in ("reference", "blas") and isa != results.best_isa:
            what = ("portable C, timed in C only" if isa == "reference"
                    else "fp32 products through OpenBLAS, the rest portable C; timed in C only")
            title = f"### {isa} ({what}: the floor target)"
        else:
            title = f"### {isa}" + (" (what isa=\"auto\" picks: the plain \"ours\" rows)"
                                    if isa == results.best_isa else f" (the \"ours ... [{isa}]\" rows)")
        lines += [title, "", *_table(header, targets_rows(results, isa)), ""]
    return lines


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
        "## Targets per ISA (issues 4, 5 and 11)",
        "",
        "Ratios are ours / reference, lower is better. The best peer is the fastest engine of another library "
        "with the same weight precision (fp32 for ours fp32, int8 for ours int8-dynamic) at that size. The "
        "read floor is the time to read the step's weights once at the measured single-thread read "
        "bandwidth of the cache level they fit in, with the loads that ISA's kernels use (section 4).",
        "",
        *_targets_section(results),
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
        "## 4. C floor and read-bandwidth floor (tools/bench_floor.c, single thread)",
        "",
        "Read bandwidth of this machine: one buffer per level, sized to sit in it, read again and again by "
        "a loop of independent loads (`bench_floor --read`): the fastest sample (what the hardware can do; "
        "the floors below use it) and the median:",
        "",
        *_levels_table(results),
        "",
        "`lstm_step` in a C loop under every ISA this CPU runs (median), beside its **read floor**: the "
        "step's weight bytes / the best read bandwidth measured over a buffer of exactly that size (so in "
        "the level they fit in), with the widest loads of that ISA (AVX-512: 512-bit, AVX2: 256-bit, portable C: "
        "128-bit SSE2, OpenBLAS: its kernel set's). *C step / floor* is how close the step is to the "
        "physical bound (issue 11: ≤ 1.3 for fp32); *Python / C* the cost of calling from Python; a plain "
        "CBLAS sgemv per layer over the same [4H, in + H] fp32 weights is the product every step computes.",
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
    floors = [(h, f["float32"].step[results.best_isa].median) for h, n in zip(hs, nets)
              if isinstance(f := results.floor.get(n), dict) and not isinstance(f.get("float32", ""), str)
              and results.best_isa in f["float32"].step]
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
