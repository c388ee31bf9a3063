"""GPTQ rounding of int8 weights (lstm_embed.gptq: gptq_rows, gptq_spec): the int8 values chosen
against calibration activations, with the per-row scales of the int8 dtypes' clip search."""
import numpy as np
import pytest
import torch

import lstm_embed
from lstm_embed.convert import spec_from_state_dict
from lstm_embed.quantize import quantize_rows, quantize_spec
from lstm_embed.gptq import gptq_rows, layer_activations
from lstm_embed.quantize_int import integer_spec

from conftest import build_lstm
from reference_int import IntModel


def nearest(w, scale):
    """Round-to-nearest int8 with the same scales: what the int8 dtypes store."""
    safe = np.where(scale > 0, scale, 1.0)
    return np.clip(np.rint(w / safe[:, None]), -127, 127).astype(np.int8)


def output_error(w, q, scale, z):
    return float(np.linalg.norm((w - scale[:, None] * q.astype(np.float64)) @ z.T))


def correlated(rng, n, d, mix=None):
    """Activations whose columns are strongly correlated (as an LSTM's inputs and h are): 3 random factors
    mixed by `mix` (drawn here when not given), plus a little independent noise."""
    mix = rng.standard_normal((3, d)) if mix is None else mix
    return rng.standard_normal((n, 3)) @ mix + 0.1 * rng.standard_normal((n, d))


def correlated_model():
    """(an LSTM(8, 32) whose strong recurrent part makes h correlated over time, calibration sequences,
    held-out sequences, PyTorch's outputs on those), fixed seeds."""
    torch.manual_seed(7)
    lstm = torch.nn.LSTM(8, 32, 1)
    with torch.no_grad():
        lstm.weight_hh_l0.mul_(3.0)
    rng = np.random.default_rng(7)
    make = lambda n: np.cumsum(rng.standard_normal((n, 60, 8)), axis=1).astype(np.float32) * 0.3
    calib, test = make(6), make(4)
    with torch.no_grad():
        want = lstm(torch.from_numpy(test).transpose(0, 1))[0].transpose(0, 1).numpy()
    return lstm, calib, test, want


def test_uncorrelated_inputs_give_round_to_nearest():
    """With orthogonal activation columns the Hessian is diagonal: no error is passed on, GPTQ is RTN."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((24, 16))
    q_rtn, scale = quantize_rows(w.astype(np.float32))
    z = np.linalg.qr(rng.standard_normal((64, 16)))[0] * rng.uniform(0.5, 3.0, 16)  # orthogonal columns
    assert np.array_equal(gptq_rows(w, z, scale.astype(np.float64)), nearest(w, scale.astype(np.float64)))
    assert np.array_equal(nearest(w, scale.astype(np.float64)), q_rtn)


@pytest.mark.parametrize("seed", range(5))
def test_correlated_inputs_cut_the_output_error(seed):
    rng = np.random.default_rng(seed)
    rows, d = 64, 48
    w = rng.standard_normal((rows, d)) * rng.uniform(0.2, 2.0, (rows, 1))
    _, scale = quantize_rows(w.astype(np.float32))
    scale = scale.astype(np.float64)
    mix = rng.standard_normal((3, d))
    z = correlated(rng, 400, d, mix)
    q = gptq_rows(w, z, scale)
    assert q.dtype == np.int8 and np.abs(q.astype(np.int64)).max() <= 127
    ours, rtn = output_error(w, q, scale, z), output_error(w, nearest(w, scale), scale, z)
    assert ours < 0.8 * rtn, (ours, rtn)
    held_out = correlated(np.random.default_rng(seed + 100), 400, d, mix)  # new samples, same distribution
    assert output_error(w, q, scale, held_out) < output_error(w, nearest(w, scale), scale, held_out)


def test_zero_rows_idle_inputs_and_saturation():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((8, 10))
    w[2] = 0.0
    scale = np.abs(w).max(axis=1) / 127
    scale[5] /= 4  # a row whose scale saturates most of its values
    z = correlated(rng, 200, 10)
    z[:, 7] = 0.0  # an input that never moves
    q = gptq_rows(w, z, scale)
    assert (q[2] == 0).all()
    assert np.abs(q.astype(np.int64)).max() <= 127 and (np.abs(q[5].astype(np.int64)) == 127).any()
    assert np.isfinite(output_error(w, q, scale, z))


def test_converter_stores_gptq_weights_with_the_int8_scales():
    """An int16x8 file's int8 values are gptq_rows of the float model's own activations on the calibration
    data, with the clip search's scales (the same scales as the int8 dtypes)."""
    lstm = build_lstm(6, 12, 2, seed=5)
    rng = np.random.default_rng(5)
    xs = [rng.standard_normal((40, 6)).astype(np.float32) for _ in range(3)]
    data = lstm_embed.convert_torch(lstm, dtype="int16x8", calibration=np.stack(xs))
    model = IntModel(data)
    spec = quantize_spec(spec_from_state_dict(lstm.state_dict()))
    acts = layer_activations(spec, xs)
    for k, (w_x, w_h, _) in enumerate(model.layers):
        cell, scales = spec.layers[k][0], spec.int8[k][0].scales.astype(np.float64)
        assert np.array_equal(w_x[:, :cell.w_ih.shape[1]], gptq_rows(cell.w_ih, acts[k][0], scales[0]))
        assert np.array_equal(w_h, gptq_rows(cell.w_hh, acts[k][1], scales[1]))
    assert not np.array_equal(model.layers[0][1], nearest(spec.layers[0][0].w_hh.astype(np.float64),
                                                          spec.int8[0][0].scales[1].astype(np.float64)))
    assert np.array_equal(integer_spec(spec, xs).int8[0][0].scales, spec.int8[0][0].scales)


def test_gptq_model_is_closer_to_float_than_round_to_nearest():
    """On a trained-like model (correlated h), the integer model's outputs with GPTQ weights are closer to
    the float model's than with the int8 dtypes' round-to-nearest values, on held-out inputs."""
    lstm, calib, test, want = correlated_model()
    data = lstm_embed.convert_torch(lstm, dtype="int16x8", calibration=calib)
    ours = np.stack([lstm_embed.Model.from_bytes(data).stream().run(t) for t in test])
    import lstm_embed.quantize_int as qi
    original = qi.gptq_spec
    try:
        qi.gptq_spec = lambda spec, seqs: spec  # the same conversion with the clip search's own values
        rtn_data = lstm_embed.convert_torch(lstm, dtype="int16x8", calibration=calib)
    finally:
        qi.gptq_spec = original
    rtn = np.stack([lstm_embed.Model.from_bytes(rtn_data).stream().run(t) for t in test])
    assert np.abs(ours - want).mean() < np.abs(rtn - want).mean()


@pytest.mark.parametrize("proj", [0, 5])
def test_calibrated_int8_conversions_store_gptq_weights(proj):
    """With calibration data, the int8 dtypes store GPTQ values (W_ih, W_hh and W_hr against the float model's
    own layer inputs, previous h and o * tanh(c)) with the clip search's scales; the file holds exactly those
    weights; without calibration data they stay round-to-nearest."""
    from dataclasses import replace

    from lstm_embed.calibrate import quantize_and_choose
    from lstm_embed.format import write_model
    from lstm_embed.quantize import _cell

    lstm = build_lstm(6, 12, 2, proj_size=proj, seed=8)
    spec = spec_from_state_dict(lstm.state_dict())
    rng = np.random.default_rng(8)
    xs = np.cumsum(rng.standard_normal((3, 50, 6)), axis=1).astype(np.float32) * 0.3  # correlated inputs
    chosen, report = quantize_and_choose(spec, "int8-a16", xs)
    rtn = quantize_spec(spec)
    acts = layer_activations(rtn, list(xs))
    for k, cells in enumerate(rtn.layers):
        cell, q = cells[0], rtn.int8[k][0]
        s_ih, s_hh = q.scales[0], q.scales[1]
        q_hr = None if not proj else (gptq_rows(cell.w_hr, acts[k][2], q.proj_scale), q.proj_scale)
        want = _cell((gptq_rows(cell.w_ih, acts[k][0], s_ih), s_ih), (gptq_rows(cell.w_hh, acts[k][1], s_hh), s_hh),
                     q_hr)
        got = chosen.int8[k][0]
        assert np.array_equal(got.weight, want.weight) and np.array_equal(got.rowsums, want.rowsums)
        assert np.array_equal(got.scales, q.scales)  # the clip search's scales
        assert not np.array_equal(got.weight, q.weight)  # GPTQ moved some values
        if proj:
            assert np.array_equal(got.proj, want.proj) and np.array_equal(got.proj_scale, q.proj_scale)
    data = lstm_embed.convert_torch(lstm, dtype="int8-a16", calibration=xs)
    assert data == write_model(replace(chosen, layer_dtypes=["int8-a16"] * 2))
    uncalibrated = lstm_embed.convert_torch(lstm, dtype="int8-a16")
    assert uncalibrated == write_model(replace(rtn, layer_dtypes=["int8-a16"] * 2))
    assert report.modes == ["int8-a16"] * 2


def test_bidirectional_calibrated_conversion_keeps_round_to_nearest():
    """A bidirectional layer cannot be traced step by step: its weights stay round-to-nearest."""
    lstm = build_lstm(4, 8, 2, bidirectional=True, seed=9)
    xs = np.random.default_rng(9).standard_normal((2, 30, 4)).astype(np.float32)
    calibrated = lstm_embed.convert_torch(lstm, dtype="int8", calibration=xs)
    assert calibrated == lstm_embed.convert_torch(lstm, dtype="int8")


@pytest.mark.parametrize("dtype", ["int8", "int8-a16", "int8-dynamic"])
def test_calibrated_int8_is_closer_to_float_than_round_to_nearest(dtype):
    """On a model with correlated h, calibration data (GPTQ values) brings every int8 dtype's outputs closer
    to the float model's than the uncalibrated file (round-to-nearest), on held-out inputs."""
    lstm, calib, test, want = correlated_model()

    def error(data):
        model = lstm_embed.Model.from_bytes(data)
        return float(np.abs(np.stack([model.stream().run(t) for t in test]) - want).mean())

    assert error(lstm_embed.convert_torch(lstm, dtype=dtype, calibration=calib)) < \
        error(lstm_embed.convert_torch(lstm, dtype=dtype))
