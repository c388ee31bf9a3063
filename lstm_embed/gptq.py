"""GPTQ rounding of int8 weights against calibration activations (Frantar et al., ICLR 2023).

Round-to-nearest keeps each weight close on its own; GPTQ keeps each row's *products* with the layer's
real inputs close: columns are rounded one at a time and each rounding error is passed on to the columns
not yet rounded, along the inverse Hessian of the least-squares problem, so later roundings compensate it.
The per-row scales stay those of the clip search (``quantize.quantize_rows``); only the int8 values change.

Used whenever a conversion has calibration data: int16x8 always (``quantize_int.integer_spec``), and the
int8 dtypes ("int8", "int8-dynamic", "int8-a16") when ``calibration=`` is given (``calibrate``). The
activations are the float model's own, from the C engine's trace over the calibration sequences: what
W_ih (the layer's input), W_hh (the previous h) and W_hr (o * tanh(c), before the projection) multiply.
Bidirectional layers keep round-to-nearest: the trace steps a model one timestep at a time, which a
bidirectional layer cannot do (its backward direction needs the whole sequence).

Float64 through LAPACK (np.linalg): deterministic on one machine; another BLAS could move a weight that
sits on a rounding tie by one step (the file's checksum then differs; its accuracy does not).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from lstm_embed.quantize import _cell, quantize_spec

# Damping of GPTQ's Hessian, as a fraction of its mean diagonal (the GPTQ paper's default).
GPTQ_DAMP = 0.01


def gptq_rows(w: np.ndarray, z: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """int8 values of ``w`` ([rows, d], float) for the fixed per-row ``scale`` ([rows]), rounded to keep
    ``w @ z.T`` close on the calibration activations ``z`` ([n, d]) rather than each weight close on its own.
    Columns are rounded in order of decreasing input energy (sum of z^2), each column's rounding error spread
    over the columns not yet rounded along the inverse Hessian (H = z.T z + damping). With uncorrelated
    inputs (a diagonal H) this is round-to-nearest; values stay in [-127, 127]."""
    w = np.array(w, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    d = w.shape[1]
    hess = z.T @ z
    energy = np.diag(hess).copy()
    idle = energy == 0  # inputs that never move: their weights do not matter; keep H invertible
    hess[idle, idle] = 1.0
    order = np.argsort(-energy, kind="stable")
    hess = hess[np.ix_(order, order)]
    hess[np.diag_indices(d)] += GPTQ_DAMP * max(float(np.mean(np.diag(hess))), 1e-300)
    upper = np.linalg.cholesky(np.linalg.inv(hess)).T
    w = w[:, order]
    safe = np.where(scale > 0, scale, 1.0)
    q = np.empty(w.shape, dtype=np.int8)
    for i in range(d):
        qi = np.clip(np.rint(w[:, i] / safe), -127, 127)
        q[:, i] = qi
        err = (w[:, i] - scale * qi) / upper[i, i]
        w[:, i + 1:] -= np.outer(err, upper[i, i + 1:])
    out = np.empty_like(q)
    out[:, order] = q
    return out


def layer_activations(spec: Any, seqs: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per layer of a unidirectional ``spec``, the float model's rows over every calibration step:
    (layer input, previous h, o * tanh(c)) — what W_ih, W_hh and W_hr multiply. From the float32 file of
    ``spec`` run by the C engine's trace (portable kernels), each sequence from a zero state (the previous h of its first step
    is 0)."""
    from lstm_embed._lstm import Model
    from lstm_embed.format import write_model

    # the portable kernels: the same bits on every x86-64 machine, so a conversion does not depend on the CPU
    model = Model.from_bytes(write_model(replace(spec, head_activation="none", layer_dtypes=[], int8=None,
                                                 int16x8=None)), isa="reference")
    traces = [model.stream().trace(s) for s in seqs]
    out = []
    for k in range(len(spec.layers)):
        x = np.concatenate([np.asarray(s, np.float64) if k == 0 else t.h[:, k - 1].astype(np.float64)
                            for s, t in zip(seqs, traces)])
        prev = np.concatenate([np.vstack([np.zeros((1, t.h.shape[2])), t.h[:-1, k].astype(np.float64)])
                               for t in traces])
        full = np.concatenate([t.gates[:, k, 3].astype(np.float64) * np.tanh(t.c[:, k].astype(np.float64))
                               for t in traces])
        out.append((x, prev, full))
    return out


def gptq_spec(spec: Any, seqs: list[np.ndarray]) -> Any:
    """``spec`` with the int8 values of its layers rounded by ``gptq_rows`` against the calibration
    activations, keeping the per-row scales of the clip search (quantised first if ``spec.int8`` lacks
    them). A bidirectional ``spec`` is returned quantised but unchanged (see the module's docstring)."""
    spec = quantize_spec(spec)
    if spec.num_directions != 1:
        return spec
    acts = layer_activations(spec, seqs)
    int8 = []
    for k, cells in enumerate(spec.layers):
        cell, q = cells[0], spec.int8[k][0]
        x, prev, full = acts[k]
        s_ih, s_hh = q.scales[0], q.scales[1]
        q_hr = None if q.proj is None else (gptq_rows(cell.w_hr, full, q.proj_scale), q.proj_scale)
        int8.append([_cell((gptq_rows(cell.w_ih, x, s_ih), s_ih), (gptq_rows(cell.w_hh, prev, s_hh), s_hh), q_hr)])
    return replace(spec, int8=int8)
