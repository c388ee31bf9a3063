"""int8 layers: accuracy against PyTorch's own dynamic int8 LSTM, exactness of every SIMD path against the
portable reference, no saturation on adversarial inputs, bounded drift, calibration, file size."""
from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
import torch

import lstm_embed
from lstm_embed.calibrate import calibrate
from lstm_embed.convert import spec_from_state_dict
from lstm_embed.format import write_model

ISAS = ["reference", "avx2", "avx512_vnni", "amx_int8", "avx2_vnni"]


def available_isas() -> list[str]:
    data = lstm_embed.convert_torch(torch.nn.LSTM(4, 4), dtype="int8")
    found = []
    for isa in ISAS:
        try:
            lstm_embed.Model.from_bytes(data, isa=isa)
            found.append(isa)
        except lstm_embed.UnsupportedError:
            pass
    return found


def torch_dynamic_int8(lstm: torch.nn.LSTM) -> torch.nn.Module:
    """PyTorch's dynamic int8 LSTM (FBGEMM/x86 engine) of the same weights."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        wrapped = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(lstm), {torch.nn.LSTM},
                                                         dtype=torch.qint8)
    return wrapped[0]


# (hidden, layers); I = H, inputs N(0, 1), 1000 steps, default torch init.
ACCURACY_CASES = [(64, 1), (128, 2), (256, 3), (512, 1)]


@pytest.mark.parametrize("hidden,layers", ACCURACY_CASES)
def test_int8_error_beats_pytorch_dynamic_int8(hidden, layers):
    torch.manual_seed(hidden + layers)
    lstm = torch.nn.LSTM(hidden, hidden, num_layers=layers).eval()
    xs = torch.randn(1000, 1, hidden)
    with torch.no_grad():
        ref = lstm(xs)[0][:, 0].numpy().astype(np.float64)
        theirs = np.abs(torch_dynamic_int8(lstm)(xs)[0][:, 0].numpy() - ref).max()
    ours = {}
    for dtype in ("int8", "int8-dynamic"):
        model = lstm_embed.Model.from_bytes(lstm_embed.convert_torch(lstm, dtype=dtype))
        ours[dtype] = np.abs(model.stream().run(xs[:, 0].numpy()) - ref).max()
    print(f"H={hidden} layers={layers}: pytorch dynamic int8 {theirs:.2e}, int8 {ours['int8']:.2e} "
          f"({ours['int8'] / theirs:.2f}x), int8-dynamic {ours['int8-dynamic']:.2e} "
          f"({ours['int8-dynamic'] / theirs:.2f}x)")
    assert ours["int8"] <= theirs / 3
    assert ours["int8-dynamic"] <= theirs / 2


@pytest.mark.parametrize("proj", [0, 7])
def test_every_isa_matches_the_reference(proj):
    torch.manual_seed(3)
    lstm = torch.nn.LSTM(37, 21, num_layers=2, proj_size=proj)
    xs = np.random.default_rng(0).normal(size=(300, 37)).astype(np.float32)
    for dtype in ("int8", "int8-dynamic"):
        data = lstm_embed.convert_torch(lstm, dtype=dtype)
        outs = {isa: lstm_embed.Model.from_bytes(data, isa=isa).stream().run(xs) for isa in available_isas()}
        for isa, out in outs.items():
            assert lstm_embed.Model.from_bytes(data, isa=isa).isa == isa
            if dtype == "int8-dynamic" and proj == 0:  # integer sums: identical to the bit
                np.testing.assert_array_equal(out, outs["reference"], err_msg=isa)
            else:  # float sums in another order
                np.testing.assert_allclose(out, outs["reference"], atol=2e-5, err_msg=isa)


def _extreme_model(dtype: str, width: int, hidden: int = 16) -> bytes:
    """Every weight +-a with the sign pattern of its column, so every int8 weight is +-127 and, with inputs
    of the same sign pattern, every product is +127 * 127: the largest possible integer sums."""
    signs = np.where(np.arange(width) % 2 == 0, 1.0, -1.0).astype(np.float32)
    a = np.float32(2.0 ** -12)  # keeps the gates in range while the int32 sums are at their maximum
    lstm = torch.nn.LSTM(width, hidden)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.from_numpy(np.tile(signs * a, (4 * hidden, 1))))
        lstm.weight_hh_l0.fill_(float(a))
        lstm.bias_ih_l0.zero_()
        lstm.bias_hh_l0.zero_()
    return lstm_embed.convert_torch(lstm, dtype=dtype), lstm_embed.convert_torch(lstm), signs


@pytest.mark.parametrize("width", [64, 1000, 4096])
def test_no_saturation_at_full_int8_range(width):
    """vpmaddubsw-style 16-bit saturation would clip these sums by orders of magnitude."""
    data, float_data, signs = _extreme_model("int8-dynamic", width)
    xs = np.tile(signs * 3.0, (5, 1)).astype(np.float32)  # every activation quantises to +-127
    want = lstm_embed.Model.from_bytes(float_data).stream().run(xs)
    for isa in available_isas():
        got = lstm_embed.Model.from_bytes(data, isa=isa).stream().run(xs)
        np.testing.assert_allclose(got, want, atol=1e-5, err_msg=isa)


def test_error_does_not_drift_over_a_long_stream():
    torch.manual_seed(11)
    lstm = torch.nn.LSTM(32, 64)
    xs = np.random.default_rng(1).normal(size=(10_000, 32)).astype(np.float32)
    ref = lstm_embed.Model.from_bytes(lstm_embed.convert_torch(lstm)).stream().run(xs)
    for dtype in ("int8", "int8-dynamic"):
        out = lstm_embed.Model.from_bytes(lstm_embed.convert_torch(lstm, dtype=dtype)).stream().run(xs)
        per_window = np.abs(out - ref).reshape(10, 1000, -1).max(axis=(1, 2))
        print(dtype, "max error per 1000 steps:", " ".join(f"{e:.1e}" for e in per_window))
        assert per_window[-3:].max() <= 2 * per_window[:3].max()
        assert per_window.max() < 0.05


def test_int8_file_is_at_most_27_percent_of_fp32():
    for hidden in (128, 256):
        lstm = torch.nn.LSTM(hidden, hidden, num_layers=2)
        fp32 = len(lstm_embed.convert_torch(lstm))
        for dtype in ("int8", "int8-dynamic"):
            ratio = len(lstm_embed.convert_torch(lstm, dtype=dtype)) / fp32
            assert ratio <= 0.27, (hidden, dtype, ratio)


def test_layer_dtypes_are_reported():
    lstm = torch.nn.LSTM(8, 16, num_layers=2)
    model = lstm_embed.Model.from_bytes(lstm_embed.convert_torch(lstm, dtype="int8-dynamic"))
    assert model.layer_dtypes == ("int8-dynamic", "int8-dynamic")
    assert model.dtype == "int8-dynamic"


def test_unknown_isa_is_refused():
    data = lstm_embed.convert_torch(torch.nn.LSTM(4, 4), dtype="int8")
    with pytest.raises(ValueError, match="isa must be one of"):
        lstm_embed.Model.from_bytes(data, isa="sse9")


def test_isa_can_be_forced_by_environment(monkeypatch):
    monkeypatch.setenv("LSTM_EMBED_ISA", "reference")
    data = lstm_embed.convert_torch(torch.nn.LSTM(4, 4), dtype="int8")
    assert lstm_embed.Model.from_bytes(data).isa == "reference"


def test_calibration_picks_modes_within_tolerance():
    torch.manual_seed(5)
    lstm = torch.nn.LSTM(16, 48, num_layers=3)
    spec = spec_from_state_dict(lstm.state_dict())
    xs = np.random.default_rng(2).normal(size=(2, 300, 16)).astype(np.float32)
    loose = calibrate(spec, xs, tolerance=1.0)
    assert loose.modes == ["int8-dynamic"] * 3
    tight = calibrate(spec, xs, tolerance=1e-9)
    assert tight.modes == ["float32"] * 3 and tight.max_error <= 1e-9
    middle_tol = (loose.max_error + calibrate(spec, xs, dtype="int8").max_error) / 2
    middle = calibrate(spec, xs, tolerance=middle_tol)
    assert middle.max_error <= middle_tol
    assert "int8-dynamic" in middle.layer_errors and len(middle.layer_errors["int8"]) == 3
    model = lstm_embed.Model.from_bytes(write_model(spec.__class__(**{**spec.__dict__,
                                                                     "layer_dtypes": middle.modes})))
    assert list(model.layer_dtypes) == middle.modes
    assert "chosen" in str(middle)


def test_convert_with_calibration_and_without(caplog):
    lstm = torch.nn.LSTM(6, 12)
    xs = np.random.default_rng(3).normal(size=(100, 6)).astype(np.float32)
    with caplog.at_level(logging.INFO, logger="lstm_embed"):
        lstm_embed.convert_torch(lstm, dtype="int8", calibration=xs)
    assert "calibration on 100 steps" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="lstm_embed"):
        lstm_embed.convert_torch(lstm, dtype="int8")
    assert "without calibration data" in caplog.text
    with pytest.raises(lstm_embed.ConversionError, match="features per step"):
        lstm_embed.convert_torch(lstm, dtype="int8", calibration=np.zeros((10, 5), np.float32))


@pytest.mark.parametrize("dtype", ["int8", "int8-dynamic"])
def test_batched_paths_equal_single_steps(dtype):
    """run (input projection of a whole chunk in one pass) and step_many (all streams in one pass) give
    the same numbers as stepping one stream at a time: bit for bit on the integer path."""
    torch.manual_seed(9)
    lstm = torch.nn.LSTM(13, 21, num_layers=2)  # 84 gate rows: a partial 16-row panel
    data = lstm_embed.convert_torch(lstm, dtype=dtype)
    rng = np.random.default_rng(4)
    for isa in available_isas():
        model = lstm_embed.Model.from_bytes(data, isa=isa)
        xs = rng.normal(size=(131, 13)).astype(np.float32)
        single = model.stream()
        stepped = np.stack([single.step(x) for x in xs])
        exact = np.testing.assert_array_equal if dtype == "int8-dynamic" else (
            lambda a, b, err_msg: np.testing.assert_allclose(a, b, atol=1e-6, err_msg=err_msg))
        exact(model.stream().run(xs), stepped, err_msg=f"run {isa}")
        for n in (1, 3, 5, 8):
            streams = [model.stream() for _ in range(n)]
            inputs = rng.normal(size=(20, n, 13)).astype(np.float32)
            together = np.stack([model.step_many(streams, x) for x in inputs])
            for i in range(n):
                alone = model.stream()
                exact(together[:, i], np.stack([alone.step(x) for x in inputs[:, i]]), err_msg=f"{isa} n={n}")


def test_fp32_kernels_of_every_isa_match_torch():
    """fp32 layers use CBLAS on the reference path and a kernel of our own on AVX-512: both equal torch."""
    torch.manual_seed(12)
    lstm = torch.nn.LSTM(33, 70, num_layers=2, proj_size=19)  # odd sizes: tails of every loop
    xs = torch.randn(400, 33)
    with torch.no_grad():
        want = lstm(xs)[0].numpy()
    data = lstm_embed.convert_torch(lstm)
    for isa in available_isas():
        model = lstm_embed.Model.from_bytes(data, isa=isa)
        stream = model.stream()
        got = np.stack([stream.step(x) for x in xs.numpy()])
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0, err_msg=isa)
        np.testing.assert_allclose(model.stream().run(xs.numpy()), want, atol=1e-5, rtol=0, err_msg=isa)


def test_bidirectional_and_cell_models_quantize():
    torch.manual_seed(13)
    xs = np.random.default_rng(5).normal(size=(200, 10)).astype(np.float32)
    bi = torch.nn.LSTM(10, 24, num_layers=2, bidirectional=True)
    with torch.no_grad():
        want = bi(torch.from_numpy(xs))[0].numpy()
    for dtype in ("int8", "int8-dynamic"):
        data = lstm_embed.convert_torch(bi, dtype=dtype)
        outs = [lstm_embed.Model.from_bytes(data, isa=isa).stream().run(xs) for isa in available_isas()]
        assert np.abs(outs[0] - want).max() < 0.02
        if dtype == "int8-dynamic":
            for out in outs[1:]:
                np.testing.assert_array_equal(out, outs[0])
    cell, head = torch.nn.LSTMCell(10, 24), torch.nn.Linear(24, 3)
    h = c = torch.zeros(1, 24)
    with torch.no_grad():
        ref = []
        for x in torch.from_numpy(xs):
            h, c = cell(x[None], (h, c))
            ref.append(torch.sigmoid(head(h))[0].numpy())
    model = lstm_embed.Model.from_bytes(lstm_embed.convert_torch(cell, head=head, head_activation="sigmoid",
                                                                 dtype="int8-dynamic"))
    assert np.abs(model.stream().run(xs) - np.stack(ref)).max() < 0.02
