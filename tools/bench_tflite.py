"""Write a ``.tflite`` model of a PyTorch ``nn.LSTM`` for the benchmark, without TensorFlow.

The model is built with the flatbuffer object classes of the TFLite schema that ship inside the
``ai-edge-litert`` package (``ai_edge_litert.schema_py_generated``). Each layer is one
UNIDIRECTIONAL_SEQUENCE_LSTM op (time-major input [T, B, I]) whose h and c are *variable* tensors: the
interpreter keeps them between ``invoke`` calls, so a streaming step is set_tensor, invoke, get_tensor,
and ``reset_all_variables`` starts a new stream.

``hybrid=True`` stores the eight gate weight matrices of each layer as int8 with a symmetric scale of
their own; activations are quantized by the kernel on every step (LiteRT's "hybrid" / dynamic-range
mode, what its converter emits for a Keras LSTM under dynamic-range quantization). The LSTM kernel
reads one scale per weight tensor (``params.scale``), so per-row scales are not available for this op:
the granularity here is one scale per gate and per input/recurrent matrix.
"""
from __future__ import annotations

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as fb

_LSTM_INPUTS = 24  # the op's input count: input, 8 weights, 3 peepholes, 4 biases, projection (2),
#                    output_state, cell_state, 4 layer-norm coefficients


class _Graph:
    """Collects tensors and buffers of one subgraph."""

    def __init__(self):
        self.tensors: list = []
        self.buffers: list = [fb.BufferT()]  # buffer 0: the empty sentinel every model starts with

    def tensor(self, name, shape, dtype=fb.TensorType.FLOAT32, data=None, variable=False, scale=None):
        buffer = 0
        if data is not None:
            buf = fb.BufferT()
            buf.data = np.ascontiguousarray(data).view(np.uint8).ravel()
            self.buffers.append(buf)
            buffer = len(self.buffers) - 1
        t = fb.TensorT(shape=np.asarray(shape, np.int32), type=dtype, buffer=buffer, name=name,
                       isVariable=variable)
        if scale is not None:
            t.quantization = fb.QuantizationParametersT(scale=[float(scale)], zeroPoint=[0])
        self.tensors.append(t)
        return len(self.tensors) - 1


def _weight(g: _Graph, name: str, w: np.ndarray, hybrid: bool) -> int:
    if not hybrid:
        return g.tensor(name, w.shape, data=w.astype(np.float32))
    scale = max(float(np.abs(w).max()), 1e-12) / 127.0
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    return g.tensor(name, w.shape, dtype=fb.TensorType.INT8, data=q, scale=scale)


def lstm_tflite(state: dict, num_layers: int, hidden: int, input_size: int, steps: int, batch: int,
                hybrid: bool = False) -> bytes:
    """The .tflite bytes of a unidirectional ``nn.LSTM`` (no projection) given its state_dict as numpy
    arrays. Input [steps, batch, input_size], output [steps, batch, hidden] of the last layer."""
    g = _Graph()
    x = g.tensor("x", [steps, batch, input_size])
    first_input = x
    ops = []
    for layer in range(num_layers):
        w_ih, w_hh = state[f"weight_ih_l{layer}"], state[f"weight_hh_l{layer}"]
        bias = state[f"bias_ih_l{layer}"] + state[f"bias_hh_l{layer}"]
        inputs = [-1] * _LSTM_INPUTS
        inputs[0] = x
        for k, gate in enumerate("ifco"):  # torch rows i, f, g, o: the same order as TFLite's
            rows = slice(k * hidden, (k + 1) * hidden)
            inputs[1 + k] = _weight(g, f"l{layer}_w_{gate}", w_ih[rows], hybrid)
            inputs[5 + k] = _weight(g, f"l{layer}_r_{gate}", w_hh[rows], hybrid)
            inputs[12 + k] = g.tensor(f"l{layer}_b_{gate}", [hidden], data=bias[rows].astype(np.float32))
        inputs[18] = g.tensor(f"l{layer}_h", [batch, hidden], variable=True)
        inputs[19] = g.tensor(f"l{layer}_c", [batch, hidden], variable=True)
        y = g.tensor(f"l{layer}_y", [steps, batch, hidden])
        options = fb.UnidirectionalSequenceLSTMOptionsT(fusedActivationFunction=fb.ActivationFunctionType.TANH,
                                                        timeMajor=True, asymmetricQuantizeInputs=hybrid)
        ops.append(fb.OperatorT(opcodeIndex=0, inputs=np.asarray(inputs, np.int32),
                                outputs=np.asarray([y], np.int32),
                                builtinOptionsType=fb.BuiltinOptions.UnidirectionalSequenceLSTMOptions,
                                builtinOptions=options))
        x = y
    sub = fb.SubGraphT(tensors=g.tensors, inputs=np.asarray([first_input], np.int32),
                       outputs=np.asarray([x], np.int32), operators=ops, name="main")
    code = fb.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM
    opcode = fb.OperatorCodeT(deprecatedBuiltinCode=code, builtinCode=code, version=4 if hybrid else 1)
    model = fb.ModelT(version=3, operatorCodes=[opcode], subgraphs=[sub], buffers=g.buffers,
                      description="lstm_embed benchmark")
    builder = flatbuffers.Builder(1 << 16)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
