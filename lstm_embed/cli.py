"""The ``lstm-embed`` command: convert, info, verify, export-c, score (see docs/cli.md, docs/score.md).

A thin shell over ``lstm_embed.checkpoint`` and ``lstm_embed.verify``. Exit codes: 0 success, 1 failure
(unreadable file, unsupported model, verification above tolerance), 2 usage error (bad options, or a
choice the user must make with --lstm/--head). Expected errors print one message on stderr, no traceback.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
from typing import Callable

import numpy as np

from lstm_embed.errors import LstmError, ModelFormatError

PROG = "lstm-embed"
_USAGE, _FAILURE = 2, 1


class _UsageError(Exception):
    """A bad combination of options found after parsing (exit code 2)."""


def _say(*lines: str, err: bool = False) -> None:
    print(*lines, sep="\n", file=sys.stderr if err else sys.stdout)


def _selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lstm", metavar="PREFIX", help="the LSTM to use when the checkpoint holds several "
                   "(its key prefix, e.g. encoder.lstm)")
    p.add_argument("--head", metavar="PREFIX", help="the nn.Linear head (key prefix), or 'none'; default: "
                   "the only Linear (weight + bias) taking the LSTM's output, if exactly one does")
    p.add_argument("--weights-only", action="store_true", help="refuse files that need full unpickling "
                   "(a whole pickled module runs code from the file when loaded)")


# --- convert ---------------------------------------------------------------------------------------------

def _convert(args: argparse.Namespace) -> int:
    from lstm_embed._lstm import Model
    from lstm_embed.checkpoint import load_checkpoint

    _check_output_folder(args.output)
    calibration = None if args.calibration is None else np.load(args.calibration, allow_pickle=False)
    onnx = args.src.lower().endswith(".onnx")
    if onnx:  # ONNX in (docs/onnx.md)
        from lstm_embed.onnx_import import OnnxSource
        ckpt = OnnxSource(args.src, lstm=args.lstm, head=args.head)
    else:
        ckpt = _load_checkpoint(load_checkpoint, args.src, lstm=args.lstm, head=args.head,
                                weights_only=args.weights_only)
    data = ckpt.convert(head_activation=args.head_activation, dtype=args.dtype, calibration=calibration,
                        tolerance=args.tolerance)
    model = Model.from_bytes(data)  # the file must open before it is written
    tmp = f"{args.output}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, args.output)
    _say(*(f"note: {n}" for n in ckpt.notes))
    _say(*(f"warning: {w}" for w in ckpt.warnings), err=True)
    head = f", head {model.head_size} ({model.head_activation})" if model.head_size else ", no head"
    _say(f"wrote {args.output}: {model.dtype}, input {model.input_size}, hidden {model.hidden_size}"
         f"{f', proj {model.proj_size}' if model.proj_size else ''}, {model.num_layers} layer(s) x "
         f"{model.num_directions} direction(s){head}; {model.param_count:,} parameters, "
         f"{model.file_size:,} bytes",
         *([f"integer-only: input scale {model.input_scale:.6g} (feed xq = round(x / scale) as int16), "
            f"output scale {model.output_scale:.6g} (y = yq * scale)"] if "int16x8" in model.layer_dtypes else []),
         "check it: compare with ONNX Runtime on your inputs (verify reads PyTorch checkpoints)" if onnx
         else f"check it: {verify_command(args)}")
    return 0


def verify_command(args: argparse.Namespace) -> str:
    """The ``verify`` command that checks what ``convert`` just wrote (same LSTM/head choice; the
    calibration data, when given, as the inputs)."""
    words = [PROG, "verify", args.output, "--against", args.src]
    for option, value in (("--lstm", args.lstm), ("--head", args.head), ("--data", args.calibration)):
        if value is not None:
            words += [option, value]
    if args.weights_only:
        words.append("--weights-only")
    return " ".join(shlex.quote(w) for w in words)


def _check_output_folder(path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        what = "is not a folder" if os.path.exists(folder) else "does not exist"
        raise LstmError(f"cannot write {path}: the output folder {folder} {what} (create it first)")


def _import_hint(path: str) -> str:
    """Which classes of a pickled module cannot be imported from here, and how to fix it ('' if unknown)."""
    import importlib.util

    try:
        import torch

        names = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # only makes the hint less specific
        return ""
    cwd = os.getcwd()
    hints = []
    for name in names:
        module, _, cls = name.rpartition(".")
        if module == "__main__":
            hints.append(f"class {cls} was defined in the training script itself (its __main__), which no "
                         "other program can import: move the class into a module (e.g. model.py) and save "
                         "again, or save the state_dict")
            continue
        try:
            found = importlib.util.find_spec(module.split(".")[0]) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            hints.append(f"module {module!r} (class {name}) is not importable from the current folder {cwd} "
                         f"nor from PYTHONPATH: run {PROG} from the training code's folder (the one holding "
                         f"{module.split('.')[0]}.py or the {module.split('.')[0]} package), or set "
                         f"PYTHONPATH=/path/to/that/folder")
    return "; ".join(hints)


def _load_checkpoint(load, path, **kwargs):
    """``load_checkpoint`` with a precise hint when a pickled module's class cannot be imported."""
    from lstm_embed.errors import ConversionError

    try:
        return load(path, **kwargs)
    except ConversionError as e:
        if "cannot be imported here" not in str(e):
            raise
        hint = _import_hint(os.fspath(path))
        if not hint:
            raise
        raise ConversionError(f"{e}\n  {hint}") from None


def _open_model(path: str):
    """``Model.load``, saying so when the file is no model file at all (e.g. the PyTorch checkpoint)."""
    from lstm_embed._lstm import Model
    from lstm_embed.verify import not_a_model

    try:
        return Model.load(path)
    except ModelFormatError:
        with open(path, "rb") as f:
            why = not_a_model(f.read(64), path)
        if why:
            raise LstmError(f"{path}: {why}") from None
        raise


# --- info ------------------------------------------------------------------------------------------------

def _info_lines(info: dict) -> list[str]:
    if not info["ok"] and info.get("not_model"):
        return []
    if not info["ok"]:
        return [f"{info['path']}: DAMAGED ({info['bytes']:,} bytes); the header says:",
                *(f"  {k:<16}{v}" for k, v in info["header"].items()),
                f"  {'checksum':<16}{info['checksum']}"]
    proj = info["proj_size"] or "none"
    head = f"{info['head_size']} ({info['head_activation']})" if info["head_size"] else "none"
    mode = "step and run" if info["streaming"] else "run only (bidirectional: no streaming)"
    rows = [("format version", info["format_version"]), ("checksum", info["checksum"]),
            ("dtype", f"{info['dtype']} (per layer: {', '.join(info['layer_dtypes'])})"),
            ("input size", info["input_size"]), ("hidden size", info["hidden_size"]), ("proj size", proj),
            ("layers", info["num_layers"]), ("directions", info["num_directions"]), ("head", head),
            ("output size", info["output_size"]), ("parameters", f"{info['param_count']:,}"),
            ("file size", f"{info['file_size']:,} bytes"),
            ("state/stream", f"{info['state_size']:,} bytes; compact {info['compact_state_size']:,} bytes "
                             "(h and c only: stream(compact=True))"),
            ("fingerprint", info["fingerprint"]), ("use", mode),
            ("kernels", f"{info['kernels']} (this machine)")]
    if info.get("integer_only"):
        rows.append(("integer-only", f"yes: int16 in and out; input scale {info['input_scale']:.6g} "
                                     f"(xq = round(x / scale)), output scale {info['output_scale']:.6g} "
                                     "(y = yq * scale)"))
    return [f"{info['path']}: lstm_embed model", *(f"  {k:<16}{v}" for k, v in rows)]


def _info(args: argparse.Namespace) -> int:
    from lstm_embed.verify import inspect_file

    info = inspect_file(args.file)
    lines = _info_lines(info)
    if args.json or lines:
        _say(json.dumps(info, indent=2) if args.json else "\n".join(lines))
    if not info["ok"]:
        _say(f"{PROG}: error: {info['path']}: {info['error']}", err=True)
        return _FAILURE
    return 0


# --- verify ----------------------------------------------------------------------------------------------

def _verify_data(args: argparse.Namespace, input_size: int) -> tuple[np.ndarray, str]:
    if args.data is None:
        steps = 1000 if args.steps is None else args.steps
        rng = np.random.default_rng(args.seed)
        return rng.standard_normal((steps, input_size)).astype(np.float32), f"N(0,1) data, seed {args.seed}"
    try:
        xs = np.load(args.data, allow_pickle=False)
    except ValueError as e:
        raise LstmError(f"cannot read {args.data} as a .npy array: {e}") from None
    if not isinstance(xs, np.ndarray):
        raise LstmError(f"{args.data} is an .npz archive; save one array with np.save")
    if xs.ndim == 1 and input_size == 1:
        xs = xs[:, None]
    if (xs.ndim not in (2, 3) or xs.shape[-1] != input_size or 0 in xs.shape or xs.dtype.kind not in "fiu"):
        raise LstmError(f"{args.data} must hold a real (T, {input_size}) or (N, T, {input_size}) array, "
                        f"got {xs.dtype} {xs.shape}")
    if xs.ndim == 3:
        return xs[:, :args.steps], f"{args.data} ({len(xs)} sequences, each on a fresh stream)"
    return xs[:args.steps], args.data


def _verify_lines(args: argparse.Namespace, ckpt, report, source: str) -> list[str]:
    head = f", head {ckpt.head_prefix!r}" if ckpt.head_prefix is not None else ""
    how = "step by step, state carried" if report.mode == "step" else "whole sequence (bidirectional: run)"
    seqs = f" x {report.sequences} sequences" if report.sequences > 1 else ""
    lines = [f"verify {args.file} ({report.dtype}) against {args.against} (LSTM {ckpt.lstm_prefix!r}{head})",
             f"data: {report.steps} steps{seqs} of {source}, {how}",
             "reference: PyTorch float64 (a .double() copy); errors are |x - float64|, "
             "'ours' = the model file, 'torch' = PyTorch float32", "",
             f"{'output':>8}  {'ours max':>10}  {'ours mean':>10}  {'torch max':>10}  {'torch mean':>10}"]
    per_output = report.per_output()
    worst = sorted(per_output, key=lambda r: -r[1])[:16] if len(per_output) > 32 else per_output
    lines += [f"{j:>8}  {mx:10.3e}  {mn:10.3e}  {tx:10.3e}  {tn:10.3e}" for j, mx, mn, tx, tn in worst]
    if len(worst) < len(per_output):
        lines.append(f"({len(worst)} worst outputs of {len(per_output)} shown; --json lists all)")
    lines += ["", f"{'steps':>13}  {'ours max':>10}  {'ours mean':>10}  {'torch max':>10}  {'torch mean':>10}"]
    lines += [f"{f'{a}-{b - 1}':>13}  {mx:10.3e}  {mn:10.3e}  {tx:10.3e}  {tn:10.3e}"
              for a, b, mx, mn, tx, tn in report.windows()]
    verdict = "PASS" if report.passed else "FAIL"
    lines += ["", f"largest |output| {report.scale:.4g}",
              f"ours vs float64:  max abs error {report.max_abs:.3e} ({report.relative:.2e} of max|output|), "
              f"mean {report.mean_abs:.3e}",
              f"torch vs float64: max abs error {report.torch_max_abs:.3e} ({report.torch_relative:.2e} of "
              f"max|output|), mean {report.torch_mean_abs:.3e}",
              f"ours vs torch:    max abs error {report.max_abs_vs_torch:.3e}",
              *([] if report.rounding_max is None else [
                  f"int8 weights alone (PyTorch float64 with the file's rounded weights) vs float64: max abs "
                  f"error {report.rounding_max:.3e} ({report.rounding_max / (report.scale or 1):.2e} of "
                  "max|output|)"]),
              f"limit {report.limit:.3e} ({report.rule}): {verdict}"]
    return lines


def _verify(args: argparse.Namespace) -> int:
    from lstm_embed._lstm import Model
    from lstm_embed.checkpoint import load_checkpoint
    from lstm_embed.verify import verify

    if (args.tolerance is not None and not args.tolerance >= 0) or (args.steps is not None and args.steps < 1):
        raise _UsageError("--tolerance must be >= 0 and --steps >= 1")
    model = _open_model(args.file)
    head = args.head if args.head is not None or model.head_size else "none"
    ckpt = _load_checkpoint(load_checkpoint, args.against, lstm=args.lstm, head=head,
                            weights_only=args.weights_only)
    xs, source = _verify_data(args, model.input_size)
    report = verify(model, ckpt, xs, args.tolerance)
    if args.json:
        _say(json.dumps({"file": args.file, "against": args.against, "lstm": ckpt.lstm_prefix,
                         "head": ckpt.head_prefix, "head_activation": model.head_activation, "data": source,
                         **report.to_dict()}, indent=2))
    else:
        _say(*_verify_lines(args, ckpt, report, source))
    if not report.passed:
        _say(f"{PROG}: error: max abs error {report.max_abs:.3e} against PyTorch float64 is above the limit "
             f"{report.limit:.3e} ({report.rule})", err=True)
    return 0 if report.passed else _FAILURE


# --- export-c ------------------------------------------------------------------------------------------

def _export_c(args: argparse.Namespace) -> int:
    from lstm_embed.export_c import default_name, export_c

    name = args.name or default_name(args.output)
    if not name.isidentifier() or not name.isascii():
        raise _UsageError(f"--name {name!r} is not a C identifier")
    c_path, h_path = export_c(args.file, args.output, name=name, header=args.header)
    _say(f"wrote {c_path} (const unsigned char {name}[], 64-byte aligned) and {h_path} (sizes)")
    return 0


# --- trace -----------------------------------------------------------------------------------------------

def _reference_model(path: str, args: argparse.Namespace, model):
    """The model to compare a trace with: a model file as it is, or a PyTorch source converted to fp32."""
    from lstm_embed._lstm import Model
    from lstm_embed.checkpoint import load_checkpoint

    with open(path, "rb") as f:
        magic = f.read(8)
    if magic == b"LSTMEMB\0":
        return _open_model(path)
    if path.lower().endswith(".onnx"):
        from lstm_embed.onnx_import import OnnxSource
        ckpt = OnnxSource(path, lstm=args.lstm, head=args.head)
    else:
        head = args.head if args.head is not None or model.head_size else "none"
        ckpt = _load_checkpoint(load_checkpoint, path, lstm=args.lstm, head=head, weights_only=args.weights_only)
    return Model.from_bytes(ckpt.convert(head_activation=model.head_activation, dtype="float32"))


def _trace(args: argparse.Namespace) -> int:
    from lstm_embed.trace import plot_trace

    if args.steps is not None and args.steps < 1:
        raise _UsageError("--steps must be >= 1")
    model = _open_model(args.file)
    xs, source = _verify_data(args, model.input_size)
    if xs.ndim == 3:
        xs = xs[0]
        source += " (the first sequence)"
    xs = xs.astype(np.float32)
    trace = model.stream().trace(xs)
    reference = None
    if args.against:
        ref_model = _reference_model(args.against, args, model)
        reference = ref_model.stream().trace(xs)
    title = f"{os.path.basename(args.file)} ({model.dtype}), {len(xs)} steps of {source}"
    if args.against:
        title += f", against {os.path.basename(args.against)}"
    _check_output_folder(args.output)
    plot_trace(trace, args.output, reference=reference, title=title)
    sat = trace.saturation()
    lines = [f"wrote {args.output}: {trace.layers} layer(s) x {trace.steps} steps ({source})",
             "saturated fraction per layer (i f g o): " + "; ".join(
                 f"layer {k}: " + " ".join(f"{v:.2f}" for v in sat[k]) for k in range(trace.layers)),
             "max |c| per layer: " + " ".join(f"{v:.3g}" for v in trace.cell_range().max(axis=0))]
    if reference is not None:
        err = trace.errors(reference)
        lines.append("max |gate error| per layer (i f g o): " + "; ".join(
            f"layer {k}: " + " ".join(f"{v:.2e}" for v in err["gates"][k]) for k in range(trace.layers)))
        lines.append(f"max |output error|: {float(err['y']):.3e}")
    _say(*lines)
    return 0


# --- score ---------------------------------------------------------------------------------------------

def _score(args: argparse.Namespace) -> int:
    from lstm_embed.score import score

    if args.workers is not None and args.scheduler is not None:
        raise _UsageError("--workers sizes the local cluster; with --scheduler the cluster has its own workers")
    if args.workers is not None and args.workers < 1:
        raise _UsageError("--workers must be >= 1")
    if not args.batch_mb > 0 or not args.timeout > 0:
        raise _UsageError("--batch-mb and --timeout must be > 0")
    progress = sys.stdout.isatty() if args.progress is None else args.progress
    report = score(args.model, args.inputs, args.output, last=args.last, scheduler=args.scheduler,
                   workers=args.workers, batch_bytes=max(1, int(args.batch_mb * (1 << 20))), fsync=args.fsync,
                   progress=progress, timeout=args.timeout)
    where = f"on {args.scheduler}" if args.scheduler else "on a local cluster"
    ran = f" {where} ({report.workers} worker(s))" if report.workers else ""
    _say(f"scored {len(report.done)} input(s) into {report.out}{ran} in {report.seconds:.1f} s; "
         f"{len(report.skipped)} already done (skipped), {len(report.failed)} failed")
    for name, why in report.failed.items():
        _say(f"{PROG}: error: {name}: {why}", err=True)
    if report.failed:
        _say(f"{PROG}: {len(report.failed)} input(s) not scored; fix them and run the same command again "
             "(finished outputs are skipped)", err=True)
    return 0 if report.ok else _FAILURE


# --- main ------------------------------------------------------------------------------------------------

def version() -> str:
    """What ``--version`` prints: the package's version and the linked C library's."""
    from lstm_embed import __version__, c_version

    return f"{PROG} {__version__} (C library {c_version()})"


def build_parser() -> argparse.ArgumentParser:
    from lstm_embed._lstm import ACTIVATIONS
    from lstm_embed.convert import DTYPES

    parser = argparse.ArgumentParser(prog=PROG, description="Convert PyTorch LSTMs to lstm_embed model "
                                     "files, inspect them, and verify them against PyTorch.")
    parser.add_argument("--version", action="version", version=version())
    sub = parser.add_subparsers(metavar="COMMAND")

    p = sub.add_parser("convert", help="PyTorch checkpoint -> model file",
                       description="Convert the LSTM (and optional Linear head) of a PyTorch checkpoint: a "
                       "state_dict, a whole pickled module, a TorchScript file or a training checkpoint dict.")
    p.add_argument("src", metavar="SRC", help="checkpoint file (torch.save or torch.jit.save)")
    p.add_argument("-o", "--output", metavar="OUT", required=True, help="model file to write")
    p.add_argument("--dtype", choices=DTYPES, default="float32",
                   help="weight format: float32 (default), int8 (int8 weights, float activations) or "
                   "int8-dynamic (activations quantized per step too; fastest) or int8-a16 (activations quantized per step "
                   "to int16: near int8's accuracy, near int8-dynamic's speed) or int16x8 (integer-only "
                   "for microcontrollers without an FPU, docs/int16x8.md; needs --calibration)")
    p.add_argument("--head-activation", choices=ACTIVATIONS, default="none",
                   help="activation after the head (default none)")
    p.add_argument("--calibration", metavar="X.npy", help="real inputs, (T, input_size) or (N, T, input_size): "
                   "measure the int8 error on them and print it per layer; with --dtype int16x8 (required) "
                   "they set the input scale and, for a head without a bounded activation, the output scale")
    p.add_argument("--tolerance", type=float, help="with --calibration: give each layer the fastest int8 "
                   "mode whose output error stays within this max abs error")
    _selection(p)
    p.set_defaults(run=_convert)

    p = sub.add_parser("info", help="describe a model file and check it",
                       description="Sizes, dtypes, parameters, file and state sizes, checksum status. Exit 1 "
                       "if the file does not open (the header fields are printed as stored).")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=_info)

    p = sub.add_parser("verify", help="compare a model file with PyTorch",
                       description="Run the model file, PyTorch float32 and PyTorch float64 (nn.LSTM rebuilt "
                       "from SRC's tensors) step by step over the same data; compare both with float64; exit 1 "
                       "if the model file's error is above the limit of its dtype (or --tolerance).")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--against", metavar="SRC", required=True, help="the checkpoint the file came from")
    p.add_argument("--data", metavar="X.npy", help="inputs, (T, input_size) or (N, T, input_size) (N "
                   "sequences, each on a fresh stream; the same array as convert --calibration); default "
                   "N(0,1) data")
    p.add_argument("--steps", type=int, help="number of steps (default 1000; with --data: all rows)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated data (default 0)")
    p.add_argument("--tolerance", type=float, help="max abs error against PyTorch float64 allowed; "
                   "default: float32 files within 4x PyTorch float32's own error (+1e-6 x max|output|), "
                   "int8 within 5e-2 x max|output|, int8-dynamic within 1e-1 x max|output|")
    p.add_argument("--json", action="store_true", help="print JSON")
    _selection(p)
    p.set_defaults(run=_verify)

    p = sub.add_parser("export-c", help="model file -> C array for a device's flash",
                       description="Validate a model file and write it as a 64-byte aligned const array "
                       "(model_data.c) and a header of the sizes a device needs at compile time (model_data.h).")
    p.add_argument("file", metavar="MODEL")
    p.add_argument("-o", "--output", metavar="OUT.c", required=True, help="C file to write")
    p.add_argument("--name", metavar="NAME", help="the array's name (default: OUT's name, e.g. model_data)")
    p.add_argument("--header", metavar="OUT.h", help="header to write (default: OUT with .h)")
    p.set_defaults(run=_export_c)

    p = sub.add_parser("trace", help="draw what each layer's gates did over time",
                       description="Step the model over the data with gate tracing (the C step itself) and "
                       "draw the gates i, f, g, o and the cell state of every layer over time, how often each "
                       "gate is saturated and how large |c| gets; with --against, the error each layer and "
                       "gate adds against that model (a float32 model file, or the PyTorch source, converted "
                       "to float32). Needs matplotlib (pip install \"lstm-embed[plot]\").")
    p.add_argument("file", metavar="MODEL")
    p.add_argument("--data", metavar="X.npy", help="inputs, (T, input_size) (of (N, T, input_size) the first "
                   "sequence); default N(0,1) data")
    p.add_argument("--steps", type=int, help="number of steps (default 1000; with --data: all rows)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated data (default 0)")
    p.add_argument("--against", metavar="SRC_OR_MODEL", help="reference: a model file or a PyTorch checkpoint")
    p.add_argument("-o", "--output", metavar="OUT.png", required=True, help="image to write")
    _selection(p)
    p.set_defaults(run=_trace)

    p = sub.add_parser("score", help="score archives of sequences on Dask (a local cluster by default)",
                       description="Run every sequence of .npy/.npz files (or folders of them), (T, input_size) "
                       "or (N, T, input_size) per array, from a zero state; write one output per input into OUT "
                       "(x.npy -> OUT/x.npy, x.npz -> OUT/x.npz). Outputs that exist are skipped, so an "
                       "interrupted run resumes; an input that fails is reported and the others go on (exit "
                       "1 if any failed). Needs pip install \"lstm-embed[dask]\". See docs/score.md.")
    p.add_argument("model", metavar="MODEL", help="model file")
    p.add_argument("inputs", metavar="INPUT", nargs="+", help=".npy / .npz file, or a folder of them")
    p.add_argument("-o", "--output", metavar="OUT", required=True, help="output folder (created if missing)")
    p.add_argument("--last", action="store_true", help="keep only the last step's output of each sequence")
    p.add_argument("--scheduler", metavar="ADDRESS", help="an existing Dask scheduler, e.g. tcp://host:8786 "
                   "(workers need lstm-embed and the same paths); default: a local cluster")
    p.add_argument("--workers", type=int, help="local cluster: worker processes (default: one per core)")
    p.add_argument("--batch-mb", type=float, default=32.0, help="input megabytes per Dask task (default 32)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to reach the scheduler and its first "
                   "worker (default 30)")
    p.add_argument("--fsync", action="store_true", help="flush each output to disk before renaming it "
                   "(outputs survive a power loss; a few ms per file)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show a progress bar (default: when stdout is a terminal)")
    p.set_defaults(run=_score)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    from lstm_embed.checkpoint import ChoiceError

    # like `python -m`: the current folder is importable, so that a whole pickled module finds its classes
    # in the training code's folder (the console script otherwise only sees its own bin/ folder)
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    parser = build_parser()
    args = parser.parse_args(argv)
    # the library reports calibration and quantization notes through logging: show them as plain lines
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.getLogger("lstm_embed").addHandler(handler)
    logging.getLogger("lstm_embed").setLevel(logging.INFO)
    run: Callable[[argparse.Namespace], int] | None = getattr(args, "run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return _USAGE
    try:
        return run(args)
    except (_UsageError, ChoiceError) as e:
        _say(f"{PROG}: error: {e}", err=True)
        return _USAGE
    except FileNotFoundError as e:
        _say(f"{PROG}: error: file not found: {e.filename} (check the path)", err=True)
        return _FAILURE
    except (OSError, LstmError) as e:
        _say(f"{PROG}: error: {e}", err=True)
        return _FAILURE


if __name__ == "__main__":
    sys.exit(main())
