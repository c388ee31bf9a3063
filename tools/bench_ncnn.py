"""Write an ncnn model (``.param`` text and ``.bin`` weights) of a PyTorch ``nn.LSTM`` for the benchmark.

No converter is involved (pnnx would need the TorchScript export): the files are written from the
state_dict following ncnn's operation-param-weight table for its ``LSTM`` layer:

- params ``0`` = num_output (H), ``1`` = weight_data_size (4H x input size, the W_xc elements of one
  direction), ``2`` = direction (0: forward), ``8`` = int8_scale_term (2: int8 weights, activations
  quantised dynamically per step, as ``ncnn2int8`` emits for recurrent layers);
- weights, in this order: W_xc [4H, I], bias [4, H] (b_ih + b_hh), W_hc [4H, H]; then, for int8,
  the per-row scales of W_xc and of W_hc (4H floats each, int8 = round(w x scale), so scale = 127 /
  max |row|). Each weight blob opens with ncnn's 4-byte storage tag: 0 for raw fp32, 0x000D4B38 for
  int8 (padded to 4 bytes); the scale blobs are raw floats without a tag.

ncnn's gate blocks are ordered I, F, O, G; PyTorch's i, f, g, o: the last two blocks are swapped.
One ``LSTM`` layer per PyTorch layer, each with its own h/c inputs (``h{k}``, ``c{k}``) and outputs
(``h{k}_out``, ``c{k}_out``), so a caller can step with the state fed back; the layer's input is
[T, I] (ncnn's LSTM has no batch dimension) and ``y`` is the output of the last layer.
"""
from __future__ import annotations

import numpy as np

_TORCH_TO_NCNN_GATES = (0, 1, 3, 2)  # ncnn block k is torch block _TORCH_TO_NCNN_GATES[k]
_TAG_FP32 = np.zeros(1, np.uint32).tobytes()
_TAG_INT8 = np.array([0x000D4B38], np.uint32).tobytes()


def _reorder(w: np.ndarray, hidden: int) -> np.ndarray:
    return np.concatenate([w[k * hidden:(k + 1) * hidden] for k in _TORCH_TO_NCNN_GATES], axis=0)


def _pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def _int8_rows(w: np.ndarray) -> tuple:
    """(tagged int8 blob, scales) of ``w`` quantised per row, symmetric, int8 = round(w x scale)."""
    scale = 127.0 / np.maximum(np.abs(w).max(axis=1), 1e-12)
    q = np.clip(np.rint(w * scale[:, None]), -127, 127).astype(np.int8)
    return _TAG_INT8 + _pad4(q.tobytes()), scale.astype(np.float32).tobytes()


def lstm_ncnn(state: dict, num_layers: int, hidden: int, input_size: int, int8: bool = False) -> tuple:
    """(param text, bin bytes) of a unidirectional ``nn.LSTM`` (no projection) from its state_dict as
    numpy arrays. Blobs: input ``x`` [T, input_size], ``h{k}`` / ``c{k}`` [H] per layer; outputs ``y``
    [T, H] and ``h{k}_out`` / ``c{k}_out``."""
    layers, blobs, weights = [], 1, []
    layers.append("Input x 0 1 x")
    x, size = "x", input_size
    for k in range(num_layers):
        layers += [f"Input h{k} 0 1 h{k}", f"Input c{k} 0 1 c{k}"]
        blobs += 2
        w_xc = _reorder(state[f"weight_ih_l{k}"], hidden).astype(np.float32)
        w_hc = _reorder(state[f"weight_hh_l{k}"], hidden).astype(np.float32)
        bias = _reorder(state[f"bias_ih_l{k}"] + state[f"bias_hh_l{k}"], hidden).astype(np.float32)
        y = "y" if k == num_layers - 1 else f"y{k}"
        params = f"0={hidden} 1={4 * hidden * size} 2=0" + (" 8=2" if int8 else "")
        layers.append(f"LSTM lstm{k} 3 3 {x} h{k} c{k} {y} h{k}_out c{k}_out {params}")
        blobs += 3
        if int8:
            xc, xc_scale = _int8_rows(w_xc)
            hc, hc_scale = _int8_rows(w_hc)
            weights += [xc, _TAG_FP32 + bias.tobytes(), hc, xc_scale, hc_scale]
        else:
            weights += [_TAG_FP32 + w_xc.tobytes(), _TAG_FP32 + bias.tobytes(), _TAG_FP32 + w_hc.tobytes()]
        x, size = y, hidden
    param = "\n".join(["7767517", f"{len(layers)} {blobs}", *layers]) + "\n"
    return param, b"".join(weights)
