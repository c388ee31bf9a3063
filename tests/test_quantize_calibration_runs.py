"""Calibration runs a model layer by layer (lstm_embed.calibrate._Runner): the same bits as whole models.

Each (layer, mode) is loaded once as a one-layer model and shared prefixes of layer modes run once, so
the outputs — hence the errors in the report, the chosen dtypes and the bytes written — must equal those
of running every mode combination as a whole model.
"""
import itertools
from dataclasses import replace

import numpy as np
import pytest

from lstm_embed._lstm import Model
import lstm_embed.calibrate as calibrate_module
from lstm_embed.calibrate import INT8_MODES, _Runner, calibrate
from lstm_embed.format import CellWeights, ModelSpec, write_model
from lstm_embed.quantize import quantize_spec

MODES = ("float32",) + INT8_MODES  # every layer dtype calibration can choose


def _spec(layers=3, bidi=False, proj=0, head=0, seed=0, inp=6, hidden=12, scale=0.4):
    rng = np.random.default_rng(seed)
    hr, dirs = proj or hidden, 2 if bidi else 1
    cells = []
    for k in range(layers):
        width = inp if k == 0 else hr * dirs
        cells.append([CellWeights(w_ih=rng.uniform(-scale, scale, (4 * hidden, width)).astype(np.float32),
                                  w_hh=rng.uniform(-scale, scale, (4 * hidden, hr)).astype(np.float32),
                                  bias=rng.uniform(-scale, scale, 4 * hidden).astype(np.float32),
                                  w_hr=(rng.uniform(-scale, scale, (proj, hidden)).astype(np.float32)
                                        if proj else None)) for _ in range(dirs)])
    spec = ModelSpec(input_size=inp, hidden_size=hidden, proj_size=proj, layers=cells)
    if head:
        spec.head_w = rng.uniform(-1, 1, (head, hr * dirs)).astype(np.float32)
        spec.head_b = rng.uniform(-1, 1, head).astype(np.float32)
        spec.head_activation = "softmax"
    return quantize_spec(spec)


def _whole(spec, modes, seqs):
    model = Model.from_bytes(write_model(replace(spec, layer_dtypes=list(modes))))
    return np.concatenate([model.stream().run(s) for s in seqs])


@pytest.mark.parametrize("config", [dict(), dict(bidi=True), dict(proj=5), dict(bidi=True, proj=4, head=3),
                                    dict(layers=1, head=2), dict(layers=2, inp=7, hidden=9)])
def test_layer_by_layer_equals_whole_models(config):
    spec = _spec(**config)
    rng = np.random.default_rng(1)
    seqs = [rng.normal(size=(t, spec.input_size)).astype(np.float32) for t in (1, 37, 300)]
    runner = _Runner(spec, seqs)
    combos = list(itertools.product(MODES, repeat=len(spec.layers)))
    runner.prefetch([list(c) for c in combos[::2]])  # half in one batch, the rest one by one
    for combo in combos:
        got, want = runner(list(combo)), _whole(spec, combo, seqs)
        assert got.dtype == np.float32 and got.tobytes() == want.tobytes(), combo
    assert len(runner.models) == len(MODES) * len(spec.layers)  # each (layer, mode) loaded once


def test_large_projected_outputs_feed_the_next_layer_model():
    """With projection weights at LSTM_MAX_ABS_WEIGHT a layer's outputs are far beyond 1; they are still
    valid inputs of the next one-layer model (|h| <= LSTM_MAX_DIM * 2^20 < LSTM_MAX_ABS_INPUT = 2^64), and
    the results are those of the whole model."""
    spec = _spec(layers=2, proj=4)
    cell = spec.layers[0][0]
    big = replace(cell, w_hr=np.where(np.arange(cell.w_hr.size).reshape(cell.w_hr.shape) % 2, 2.0 ** 20,
                                      -(2.0 ** 20)).astype(np.float32))
    spec = quantize_spec(replace(spec, layers=[[big], spec.layers[1]], int8=None))
    seqs = [np.random.default_rng(2).normal(size=(20, spec.input_size)).astype(np.float32)]
    runner = _Runner(spec, seqs)
    for combo in itertools.product(MODES, repeat=2):
        got, want = runner(list(combo)), _whole(spec, combo, seqs)
        assert got.tobytes() == want.tobytes(), combo
    assert np.abs(np.concatenate(runner.outputs[("float32",)])).max() > 1e5


def test_each_layer_model_is_loaded_once_per_calibration(monkeypatch):
    """The float32 reference, every one-layer trial and the tolerance search load each (layer, mode) once
    and never a whole model."""
    spec = _spec(layers=3)
    loads = []

    class Counting:
        @staticmethod
        def from_bytes(data, **kwargs):
            model = Model.from_bytes(data, **kwargs)
            loads.append((model.num_layers, tuple(model.layer_dtypes)))
            return model

    monkeypatch.setattr(calibrate_module, "Model", Counting)
    seqs = np.random.default_rng(3).normal(size=(2, 30, spec.input_size)).astype(np.float32)
    report = calibrate(spec, seqs, "int8-dynamic", tolerance=1e-9)  # walks every layer up to float32
    assert report.modes == ["float32"] * 3
    assert sorted(loads) == sorted((1, (mode,)) for mode in MODES for _ in range(3))
