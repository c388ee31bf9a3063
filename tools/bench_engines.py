"""The engines the benchmark compares, each behind the same small interface.

A ``Net`` is one random ``torch.nn.LSTM`` (input size = hidden size) plus the artefacts every engine
builds from it (our model file, ONNX models, .tflite files), made once and cached. An ``Engine`` names
a peer and makes a ``Runner`` for a given batch size. A runner carries its own recurrent state:

    arg = runner.feed(x)        # x: (B, I) float32; put it where the engine reads it, once
    y = runner.step(arg, runner.out)   # one timestep for the B streams -> B * H values
    runner.reset()              # zero state
    ys = runner.run(xs)         # (T, I) -> (T, H), batch 1 (unless ``runner.no_run`` says why not)

``step`` is what the timing loop calls, with the arguments ``feed`` returned: for our engine at batch 1
it *is* ``Stream.step`` (no wrapper), for the peers it is the thinnest call sequence their Python API
allows (state tensors fed back, io_binding with preallocated buffers, ...). Engines whose package is
missing or that cannot build a model raise ``Unavailable`` with the reason.
"""
from __future__ import annotations

import contextlib
import copy
import importlib
import logging
import tempfile
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

import lstm_embed


class Unavailable(Exception):
    """This engine cannot run here; the message says why (printed as n/a in the tables)."""


@dataclass
class Net:
    """A random ``nn.LSTM`` with input size = hidden size, and the files the engines load, cached."""

    hidden: int
    layers: int
    seed: int = 0
    lstm: torch.nn.LSTM = field(init=False)
    state: dict = field(init=False)
    _cache: dict = field(init=False, default_factory=dict)

    def __post_init__(self):
        torch.manual_seed(self.seed + 1000 * self.hidden + self.layers)
        self.lstm = torch.nn.LSTM(self.hidden, self.hidden, self.layers).eval()
        self.state = {k: v.detach().numpy().copy() for k, v in self.lstm.state_dict().items()}

    @property
    def label(self) -> str:
        return f"H={self.hidden}" if self.layers == 1 else f"{self.layers}×{self.hidden}"

    def cached(self, key, make: Callable):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def ours(self, dtype: str) -> bytes:
        """Our model file for ``dtype``; ``Unavailable`` if the converter does not offer it."""
        def make():
            try:
                return lstm_embed.convert_torch(self.lstm, dtype=dtype)
            except (lstm_embed.ConversionError, ValueError, TypeError) as e:
                return Unavailable(f"convert_torch(dtype={dtype!r}): {e}")
        data = self.cached(("ours", dtype), make)
        if isinstance(data, Unavailable):
            raise data
        return data

    def onnx(self, int8: bool) -> bytes:
        import bench_onnx

        fp32 = self.cached("onnx", lambda: bench_onnx.lstm_onnx(self.state, self.layers, self.hidden, self.hidden))
        if not int8:
            return self.cached("onnx-bytes", fp32.SerializeToString)
        return self.cached("onnx-int8", lambda: bench_onnx.quantize_int8(fp32))

    def ncnn(self, int8: bool) -> tuple:
        """(param text, bin bytes) of the ncnn model (fp32, or int8 weights with per-row scales)."""
        import bench_ncnn

        return self.cached(("ncnn", int8), lambda: bench_ncnn.lstm_ncnn(self.state, self.layers, self.hidden,
                                                                          self.hidden, int8))

    def executorch(self, batch: int) -> tuple:
        """(program bytes, delegated partitions) of one step at ``batch`` streams, lowered to XNNPACK."""
        import bench_executorch

        return self.cached(("executorch", batch), lambda: bench_executorch.lstm_executorch(self.lstm, batch))

    def tflite(self, steps: int, batch: int, hybrid: bool) -> bytes:
        import bench_tflite

        return self.cached(("tflite", steps, batch, hybrid), lambda: bench_tflite.lstm_tflite(
            self.state, self.layers, self.hidden, self.hidden, steps, batch, hybrid))


def _need(module: str, package: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as e:
        raise Unavailable(f"{package} is not installed ({e})") from None


class Runner:
    """Base of the runners (each defines feed, step and reset): by default no run() and no context."""

    no_run = "no sequence API"  # why run() is not offered; "" when it is
    out = None  # the output buffer step() writes to, for the engines that take one

    def context(self):
        """A context manager the runner must be checked and timed inside (e.g. a torch backend flag)."""
        return contextlib.nullcontext()


# ---- ours ---------------------------------------------------------------------------------------------

class OursRunner(Runner):
    """``Stream.step(x, out)`` at batch 1 (bound method, called directly); ``Model.step_many`` above."""

    no_run = ""

    def __init__(self, net: Net, batch: int, dtype: str, isa: str = "auto"):
        self.model = lstm_embed.Model.from_bytes(net.ours(dtype), isa=isa)
        self.streams = [self.model.stream() for _ in range(batch)]
        self.batch = batch
        self._ys = None
        size = self.model.output_size
        self.out = np.empty(size if batch == 1 else (batch, size), np.float32)
        if batch == 1:
            self.step = self.streams[0].step

    def feed(self, x):
        return np.ascontiguousarray(x[0] if self.batch == 1 else x, dtype=np.float32)

    def step(self, xs, out):
        return self.model.step_many(self.streams, xs, out)

    def reset(self):
        for s in self.streams:
            s.reset()

    def run(self, xs):
        if self._ys is None or self._ys.shape[0] != xs.shape[0]:
            self._ys = np.empty((xs.shape[0], self.model.output_size), np.float32)
        return self.streams[0].run(xs, self._ys)


# ---- PyTorch ------------------------------------------------------------------------------------------

class TorchLSTMRunner(Runner):
    """``nn.LSTM`` called on one timestep with (h, c) fed back; oneDNN on or off; optionally the dynamic
    int8 module of ``torch.ao.quantization.quantize_dynamic``."""

    no_run = ""

    def __init__(self, net: Net, batch: int, mkldnn: bool = True, int8: bool = False):
        self.mkldnn = mkldnn
        self.module = net.cached("torch-int8", lambda: _torch_dynamic_int8(net.lstm)) if int8 else net.lstm
        self.zero = (torch.zeros(net.layers, batch, net.hidden), torch.zeros(net.layers, batch, net.hidden))
        self.hc = self.zero

    def context(self):
        return torch.backends.mkldnn.flags(enabled=self.mkldnn)

    def feed(self, x):
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None]

    def step(self, x, out):
        y, self.hc = self.module(x, self.hc)
        return y

    def reset(self):
        self.hc = self.zero

    def run(self, xs):
        y, self.hc = self.module(torch.from_numpy(xs)[:, None], self.hc)
        return y[:, 0]


def _torch_dynamic_int8(lstm: torch.nn.LSTM):
    # quantize_dynamic swaps the children of the module it is given, never the module itself.
    holder = torch.nn.ModuleDict({"lstm": copy.deepcopy(lstm)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(holder, {torch.nn.LSTM}, dtype=torch.qint8)["lstm"]


class TorchCellRunner(Runner):
    """One ``nn.LSTMCell`` per layer with the same weights, the layers chained in Python."""

    def __init__(self, net: Net, batch: int):
        self.cells = []
        for k in range(net.layers):
            cell = torch.nn.LSTMCell(net.hidden, net.hidden).eval()
            cell.load_state_dict({name: torch.from_numpy(net.state[f"{name}_l{k}"])
                                  for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
            self.cells.append(cell)
        self.zero = [(torch.zeros(batch, net.hidden), torch.zeros(batch, net.hidden))] * net.layers
        self.hc = list(self.zero)

    def feed(self, x):
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

    def step(self, x, out):
        hc = self.hc
        for k, cell in enumerate(self.cells):
            hc[k] = cell(x, hc[k])
            x = hc[k][0]
        return x

    def reset(self):
        self.hc = list(self.zero)


# ---- ONNX Runtime -------------------------------------------------------------------------------------

def _ort_session(data: bytes):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


class OrtRunner(Runner):
    """``InferenceSession.run`` with a feed dict whose h/c entries are replaced by the outputs."""

    no_run = ""

    def __init__(self, net: Net, batch: int, int8: bool):
        _need("onnxruntime", "onnxruntime")
        _need("onnx", "onnx")
        with _quiet_logging():
            self.session = _ort_session(net.onnx(int8))
        self.state_names = [f"{n}{k}" for k in range(net.layers) for n in "hc"]
        self.out_names = ["y"] + [n + "_out" for n in self.state_names]
        self.zero = {n: np.zeros((1, batch, net.hidden), np.float32) for n in self.state_names}
        self.inputs = dict(self.zero)

    def feed(self, x):
        self.inputs["x"] = np.ascontiguousarray(x, dtype=np.float32)[None]
        return self.inputs

    def step(self, inputs, out):
        y, *state = self.session.run(self.out_names, inputs)
        inputs.update(zip(self.state_names, state))
        return y

    def reset(self):
        self.inputs.update(self.zero)

    def run(self, xs):
        self.inputs["x"] = np.ascontiguousarray(xs[:, None, :], dtype=np.float32)
        return self.step(self.inputs, None)[:, 0]


class OrtBindingRunner(Runner):
    """``run_with_iobinding`` over preallocated OrtValues: two bindings prepared once (state A -> B and
    B -> A) used in turn, so a step binds nothing and copies nothing."""

    no_run = "streaming variant (whole sequences: ORT run)"

    def __init__(self, net: Net, batch: int, int8: bool):
        _need("onnxruntime", "onnxruntime")
        _need("onnx", "onnx")
        import onnxruntime as ort

        with _quiet_logging():
            self.session = _ort_session(net.onnx(int8))
        names = [f"{n}{k}" for k in range(net.layers) for n in "hc"]
        shape = (1, batch, net.hidden)
        self.x = np.zeros((1, batch, net.hidden), np.float32)
        self.y = np.zeros(shape, np.float32)
        self.states = [[np.zeros(shape, np.float32) for _ in names] for _ in range(2)]
        value = ort.OrtValue.ortvalue_from_numpy
        self.keep = [value(self.x), value(self.y)]  # OrtValues view the numpy buffers: keep them alive
        self.bindings = []
        for src, dst in ((0, 1), (1, 0)):
            b = self.session.io_binding()
            b.bind_ortvalue_input("x", self.keep[0])
            b.bind_ortvalue_output("y", self.keep[1])
            for name, a, z in zip(names, self.states[src], self.states[dst]):
                va, vz = value(a), value(z)
                self.keep += [va, vz]
                b.bind_ortvalue_input(name, va)
                b.bind_ortvalue_output(name + "_out", vz)
            self.bindings.append(b)
        self.turn = 0

    def feed(self, x):
        self.x[0] = x
        return self.x

    def step(self, x, out):
        self.session.run_with_iobinding(self.bindings[self.turn])
        self.turn ^= 1
        return self.y

    def reset(self):
        for buffers in self.states:
            for a in buffers:
                a.fill(0.0)
        self.turn = 0


# ---- LiteRT -------------------------------------------------------------------------------------------

class LiteRTRunner(Runner):
    """``set_tensor``, ``invoke``, ``get_tensor`` on an interpreter whose LSTM state is variable tensors."""

    no_run = ""

    def __init__(self, net: Net, batch: int, hybrid: bool):
        _need("ai_edge_litert", "ai-edge-litert")
        self.net, self.batch, self.hybrid = net, batch, hybrid
        self.interp, self.i, self.o = self._interpreter(1)
        self._seq = None

    def _interpreter(self, steps: int):
        from ai_edge_litert.interpreter import Interpreter

        with _quiet_logging():
            interp = Interpreter(model_content=self.net.tflite(steps, self.batch, self.hybrid), num_threads=1)
            interp.allocate_tensors()
        return interp, interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]

    def feed(self, x):
        return np.ascontiguousarray(x, dtype=np.float32)[None]

    def step(self, x, out):
        self.interp.set_tensor(self.i, x)
        self.interp.invoke()
        return self.interp.get_tensor(self.o)

    def reset(self):
        self.interp.reset_all_variables()

    def run(self, xs):
        if self._seq is None or self._seq[0] != xs.shape[0]:
            self._seq = (xs.shape[0], *self._interpreter(xs.shape[0]))
        _, interp, i, o = self._seq
        interp.set_tensor(i, np.ascontiguousarray(xs[:, None, :]))
        interp.invoke()
        return interp.get_tensor(o)[:, 0]


# ---- OpenVINO -----------------------------------------------------------------------------------------

OPENVINO_CONFIG = {"INFERENCE_NUM_THREADS": 1, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
                   "INFERENCE_PRECISION_HINT": "f32"}  # f32: on CPUs with AMX/AVX-512 BF16 the default is bf16


class OpenVINORunner(Runner):
    """The ONNX model of the ORT rows read by OpenVINO, shapes made static, compiled for "CPU" with one
    thread and f32 inference precision. A step is ``InferRequest.infer()`` on one of two requests whose
    input and output tensors were set once over numpy buffers (state A -> B, then B -> A), as the ORT
    io_binding rows; whole sequences are one ``infer`` of a model reshaped to [T, 1, I]."""

    no_run = ""

    def __init__(self, net: Net, batch: int):
        _need("openvino", "openvino")
        _need("onnx", "onnx")
        import openvino as ov

        self.ov, self.net, self.batch = ov, net, batch
        self.core = ov.Core()
        self.names = [f"{n}{k}" for k in range(net.layers) for n in "hc"]
        shape = (1, batch, net.hidden)
        self.x = np.zeros(shape, np.float32)
        self.y = np.zeros(shape, np.float32)
        self.states = [[np.zeros(shape, np.float32) for _ in self.names] for _ in range(2)]
        compiled = self._compiled(1)
        self.requests = []
        for src, dst in ((0, 1), (1, 0)):
            r = compiled.create_infer_request()
            r.set_tensor("x", ov.Tensor(self.x, shared_memory=True))
            r.set_tensor("y", ov.Tensor(self.y, shared_memory=True))
            for name, a, z in zip(self.names, self.states[src], self.states[dst]):
                r.set_tensor(name, ov.Tensor(a, shared_memory=True))
                r.set_tensor(name + "_out", ov.Tensor(z, shared_memory=True))
            self.requests.append(r)
        self.turn = 0
        self._seq = None

    def _compiled(self, steps: int):
        model = self.core.read_model(self.net.onnx(False), b"")
        shape = [1, self.batch, self.net.hidden]
        model.reshape({"x": [steps, self.batch, self.net.hidden], **{n: shape for n in self.names}})
        return self.core.compile_model(model, "CPU", OPENVINO_CONFIG)

    def feed(self, x):
        self.x[0] = x
        return self.x

    def step(self, x, out):
        self.requests[self.turn].infer()
        self.turn ^= 1
        return self.y

    def reset(self):
        for buffers in self.states:
            for a in buffers:
                a.fill(0.0)
        self.turn = 0

    def run(self, xs):
        if self._seq is None or self._seq[0] != xs.shape[0]:
            self._seq = (xs.shape[0], self._compiled(xs.shape[0]).create_infer_request())
        zero = np.zeros((1, 1, self.net.hidden), np.float32)
        request = self._seq[1]
        request.infer({"x": np.ascontiguousarray(xs[:, None, :]), **{n: zero for n in self.names}})
        return request.get_tensor("y").data[:, 0]


# ---- ncnn ---------------------------------------------------------------------------------------------

class NcnnRunner(Runner):
    """ncnn's ``LSTM`` layer from a .param/.bin written by tools/bench_ncnn.py, one thread, fp32 storage
    and arithmetic (no fp16/bf16). ``ncnn.Mat(array)`` wraps the numpy buffer without copying it: every
    array a Mat is made from is kept alive as long as the Mat is used. A step is a new ``Extractor`` (ncnn's API: an extractor caches its
    blobs), the input and the h/c of each layer set, and ``y`` and the new states extracted; ncnn's LSTM
    has no batch dimension, so there is no batched row."""

    no_run = ""

    def __init__(self, net: Net, batch: int, int8: bool):
        _need("ncnn", "ncnn")
        if batch != 1:
            raise Unavailable("ncnn's LSTM layer has no batch dimension (one stream per extractor)")
        import ncnn

        self.ncnn, self.net = ncnn, net
        param, weights = net.ncnn(int8)
        self.model = ncnn.Net()
        opt = self.model.opt
        opt.num_threads = 1
        opt.use_fp16_packed = opt.use_fp16_storage = opt.use_fp16_arithmetic = False
        opt.use_bf16_storage = False
        with tempfile.TemporaryDirectory() as tmp:
            paths = [f"{tmp}/lstm.param", f"{tmp}/lstm.bin"]
            with open(paths[0], "w") as f:
                f.write(param)
            with open(paths[1], "wb") as f:
                f.write(weights)
            if self.model.load_param(paths[0]) != 0 or self.model.load_model(paths[1]) != 0:
                raise Unavailable("ncnn could not load the model written by tools/bench_ncnn.py")
        self.names = [f"{n}{k}" for k in range(net.layers) for n in "hc"]
        self.zero_arrays = [np.zeros(net.hidden, np.float32) for _ in self.names]
        self.zero = [ncnn.Mat(a) for a in self.zero_arrays]
        self.state = list(self.zero)
        self.x = np.zeros((1, net.hidden), np.float32)

    def feed(self, x):
        self.x = np.ascontiguousarray(x, dtype=np.float32).reshape(1, -1).copy()
        return self.ncnn.Mat(self.x)

    def step(self, x, out):
        ex = self.model.create_extractor()
        ex.input("x", x)
        for name, m in zip(self.names, self.state):
            ex.input(name, m)
        _, y = ex.extract("y")
        self.state = [ex.extract(name + "_out")[1] for name in self.names]
        return np.asarray(y)

    def reset(self):
        self.state = list(self.zero)

    def run(self, xs):
        ex = self.model.create_extractor()
        xs = np.ascontiguousarray(xs, dtype=np.float32)  # referenced by the Mat until the extraction
        ex.input("x", self.ncnn.Mat(xs))
        for name, m in zip(self.names, self.zero):
            ex.input(name, m)
        _, y = ex.extract("y")
        return np.asarray(y)


# ---- ExecuTorch ---------------------------------------------------------------------------------------

class ExecuTorchRunner(Runner):
    """A one-step ExecuTorch program (tools/bench_executorch.py) lowered to XNNPACK, run by the Python
    runtime (``_load_for_executorch_from_buffer``, ``forward([x, h, c])``) with h and c fed back. The
    runtime's thread pool (XNNPACK's threads) is reset to one thread."""

    no_run = "torch.export unrolls the sequence (one program per length): not timed"

    def __init__(self, net: Net, batch: int):
        _need("executorch", "executorch")
        try:
            from executorch.extension.pybindings import portable_lib
            program, delegated = net.executorch(batch)
        except ImportError as e:
            raise Unavailable(f"executorch is installed but cannot export or load ({e})") from None
        if not delegated:
            raise Unavailable("XNNPACK took no part of the exported LSTM (portable operators only)")
        portable_lib._unsafe_reset_threadpool(1)
        if portable_lib._threadpool_get_thread_count() != 1:
            raise Unavailable("the ExecuTorch thread pool would not go down to one thread")
        with _quiet_logging():
            self.module = portable_lib._load_for_executorch_from_buffer(program)
        self.zero = (torch.zeros(net.layers, batch, net.hidden), torch.zeros(net.layers, batch, net.hidden))
        self.hc = self.zero

    def feed(self, x):
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None]

    def step(self, x, out):
        y, h, c = self.module.forward([x, *self.hc])
        self.hc = (h, c)
        return y

    def reset(self):
        self.hc = self.zero


@contextlib.contextmanager
def _quiet_logging():
    """Silence the advice ONNX Runtime's quantizer logs and the INFO lines of LiteRT's Python wrapper."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


# ---- the list -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Engine:
    """A named engine: ``make(net, batch)`` gives a Runner or raises Unavailable."""

    label: str
    family: str        # "ours", "torch", "onnxruntime", "litert", "openvino", "ncnn", "executorch"
    precision: str     # "fp32" or "int8"
    what: str          # what is timed, for the engines table
    make: Callable[[Net, int], Runner]
    isa: str = ""      # ours: the kernels' ISA (lstm_embed ISA name); "" for the peers
    slow: str = ""     # why --smoke skips it (its set-up alone takes longer than the smoke budget), or ""

    @property
    def is_ours(self) -> bool:
        return self.family == "ours"


def other_isas() -> list:
    """The SIMD kernel paths of ours that this CPU runs besides the one "auto" picks (``best_isa()``): each
    gets rows of its own, so one run measures every ISA the machine has (e.g. AVX2 on an AVX-512
    machine). "reference" (portable C) and "blas" (fp32 through OpenBLAS) are not SIMD paths of ours: they
    are timed in C only (the floor table)."""
    best = lstm_embed.best_isa()
    return [isa for isa in lstm_embed.supported_isas() if isa not in (best, "reference", "blas")]


_OURS_DTYPES = (("float32", "fp32"), ("int8", "int8"), ("int8-dynamic", "int8"))  # (dtype, weight precision)


def ours_label(dtype: str, isa: str | None = None) -> str:
    """The engine label of ours for a dtype ("float32", "int8", "int8-dynamic") and ISA: "ours fp32" for
    the ISA "auto" picks (``isa`` None or ``best_isa()``), "ours fp32 [avx2]" for another."""
    short = {"float32": "fp32"}.get(dtype, dtype)
    return f"ours {short}" if isa is None or isa == lstm_embed.best_isa() else f"ours {short} [{isa}]"


ENGINES = [
    Engine("ours fp32", "ours", "fp32", "Stream.step(x, out) / Stream.run / Model.step_many",
           lambda n, b: OursRunner(n, b, "float32"), lstm_embed.best_isa()),
    Engine("ours int8", "ours", "int8", "int8 weights, float activations; same calls",
           lambda n, b: OursRunner(n, b, "int8"), lstm_embed.best_isa()),
    Engine("ours int8-dynamic", "ours", "int8", "int8 weights and per-step int8 activations; same calls",
           lambda n, b: OursRunner(n, b, "int8-dynamic"), lstm_embed.best_isa()),
    *[Engine(ours_label(dtype, isa), "ours", precision, f"the same, kernels forced to isa={isa!r}",
             (lambda d, i: lambda n, b: OursRunner(n, b, d, i))(dtype, isa), isa)
      for isa in other_isas() for dtype, precision in _OURS_DTYPES],
    Engine("torch LSTM", "torch", "fp32", "nn.LSTM(x[1,B,I], (h, c)), oneDNN enabled (default)",
           lambda n, b: TorchLSTMRunner(n, b, mkldnn=True)),
    Engine("torch LSTM no-oneDNN", "torch", "fp32", "nn.LSTM under torch.backends.mkldnn.flags(enabled=False)",
           lambda n, b: TorchLSTMRunner(n, b, mkldnn=False)),
    Engine("torch LSTMCell", "torch", "fp32", "one nn.LSTMCell per layer (no sequence API)",
           TorchCellRunner),
    Engine("torch dynamic int8", "torch", "int8", "quantize_dynamic(nn.LSTM, qint8) (FBGEMM), same call",
           lambda n, b: TorchLSTMRunner(n, b, int8=True)),
    Engine("ORT fp32 run", "onnxruntime", "fp32", "InferenceSession.run, ONNX LSTM op",
           lambda n, b: OrtRunner(n, b, int8=False)),
    Engine("ORT fp32 io_binding", "onnxruntime", "fp32", "run_with_iobinding, preallocated OrtValues",
           lambda n, b: OrtBindingRunner(n, b, int8=False)),
    Engine("ORT int8 run", "onnxruntime", "int8", "InferenceSession.run, DynamicQuantizeLSTM (per-row)",
           lambda n, b: OrtRunner(n, b, int8=True)),
    Engine("ORT int8 io_binding", "onnxruntime", "int8", "run_with_iobinding, DynamicQuantizeLSTM",
           lambda n, b: OrtBindingRunner(n, b, int8=True)),
    Engine("LiteRT fp32", "litert", "fp32", "set_tensor/invoke/get_tensor, UNIDIRECTIONAL_SEQUENCE_LSTM",
           lambda n, b: LiteRTRunner(n, b, hybrid=False)),
    Engine("LiteRT hybrid int8", "litert", "int8", "same, int8 weights (one scale per gate matrix)",
           lambda n, b: LiteRTRunner(n, b, hybrid=True)),
    Engine("OpenVINO fp32", "openvino", "fp32",
           "InferRequest.infer() on preset tensors (the ONNX model), CPU, 1 thread, f32 precision",
           OpenVINORunner),
    Engine("ncnn fp32", "ncnn", "fp32", "Extractor input/extract per step, LSTM layer, 1 thread, no fp16",
           lambda n, b: NcnnRunner(n, b, int8=False)),
    Engine("ncnn int8", "ncnn", "int8", "same, int8 weights (per-row scales), int8_scale_term=2",
           lambda n, b: NcnnRunner(n, b, int8=True)),
    Engine("ExecuTorch XNNPACK", "executorch", "fp32", "Module.forward([x, h, c]) of a one-step XNNPACK program",
           ExecuTorchRunner, slow="not run by --smoke: importing executorch and exporting take ~30 s"),
]
