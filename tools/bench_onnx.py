"""Build an ONNX graph of a PyTorch ``nn.LSTM`` directly with ``onnx.helper``, and its int8 version.

One ONNX ``LSTM`` node per layer (no ``torch.onnx`` export, so nothing depends on the exporter). Inputs:
``x`` [T, B, I] and, per layer k, ``h{k}`` / ``c{k}`` [1, B, H]; outputs: ``y`` [T, B, H] of the last
layer and ``h{k}_out`` / ``c{k}_out``, which the caller feeds back as the next step's state. T and B are
symbolic, so one model serves streaming steps, whole sequences and batches.

ONNX orders the gate blocks of W, R and B as i, o, f, c; PyTorch as i, f, g, o: the rows are reordered.
``quantize_int8`` runs ONNX Runtime's dynamic quantizer, which turns each ``LSTM`` into the contrib op
``DynamicQuantizeLSTM`` (int8 weights, activations quantized per call).
"""
from __future__ import annotations

import os
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

_TORCH_TO_ONNX_GATES = (0, 3, 1, 2)  # ONNX block k is torch block _TORCH_TO_ONNX_GATES[k]
OPSET = 17


def _reorder(w: np.ndarray, hidden: int) -> np.ndarray:
    return np.concatenate([w[k * hidden:(k + 1) * hidden] for k in _TORCH_TO_ONNX_GATES], axis=0)


def lstm_onnx(state: dict, num_layers: int, hidden: int, input_size: int) -> onnx.ModelProto:
    """The ONNX model of a unidirectional ``nn.LSTM`` (no projection) from its state_dict as numpy."""
    nodes, inits, inputs, outputs = [], [], [], []
    inputs.append(helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", "B", input_size]))
    x = "x"
    inits.append(numpy_helper.from_array(np.array([1], np.int64), "axis1"))
    for k in range(num_layers):
        w = _reorder(state[f"weight_ih_l{k}"], hidden)[None]
        r = _reorder(state[f"weight_hh_l{k}"], hidden)[None]
        b = np.concatenate([_reorder(state[f"bias_ih_l{k}"], hidden), _reorder(state[f"bias_hh_l{k}"], hidden)])
        inits += [numpy_helper.from_array(w.astype(np.float32), f"W{k}"),
                  numpy_helper.from_array(r.astype(np.float32), f"R{k}"),
                  numpy_helper.from_array(b[None].astype(np.float32), f"B{k}")]
        for name in (f"h{k}", f"c{k}"):
            inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, "B", hidden]))
            outputs.append(helper.make_tensor_value_info(name + "_out", TensorProto.FLOAT, [1, "B", hidden]))
        nodes.append(helper.make_node("LSTM", [x, f"W{k}", f"R{k}", f"B{k}", "", f"h{k}", f"c{k}"],
                                      [f"y{k}_4d", f"h{k}_out", f"c{k}_out"], hidden_size=hidden,
                                      name=f"lstm{k}"))
        y = "y" if k == num_layers - 1 else f"y{k}"
        nodes.append(helper.make_node("Squeeze", [f"y{k}_4d", "axis1"], [y], name=f"squeeze{k}"))
        x = y
    outputs.insert(0, helper.make_tensor_value_info("y", TensorProto.FLOAT, ["T", "B", hidden]))
    graph = helper.make_graph(nodes, "lstm", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="lstm_embed-bench")
    onnx.checker.check_model(model)
    return model


def quantize_int8(model: onnx.ModelProto) -> bytes:
    """ONNX Runtime's dynamic int8 quantization of ``model`` (per-row weight scales); the bytes of the
    quantized model. The quantizer works on files, so this goes through a temporary directory."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "fp32.onnx"), os.path.join(tmp, "int8.onnx")
        onnx.save(model, src)
        quantize_dynamic(src, dst, per_channel=True, weight_type=QuantType.QInt8, op_types_to_quantize=["LSTM"])
        with open(dst, "rb") as f:
            return f.read()
