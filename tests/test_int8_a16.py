"""int8-a16 layers (issue 14): int8 weights times int16 activations quantised per step.

- The C step against an independent NumPy model of the integer math: int16 quantisation, exact int64
  sums, the float32 epilogue (gate pre-activations), checked through the gate activations of the trace.
- One arithmetic everywhere: every ISA this CPU runs gives the reference's bits; step, run and step_many
  give the same bits.
- No overflow at the largest input width a model may have (65536 columns, every weight and activation
  at full scale: the sums pass 2^38).
- Accuracy between int8-dynamic and int8; calibration with a tolerance picks it between them; verify's
  budget and the CLI's dtype list know it.
"""
import numpy as np
import pytest
import torch

import lstm_embed
from lstm_embed.calibrate import INT8_MODES, calibrate
from lstm_embed.convert import DTYPES, spec_from_state_dict
from lstm_embed.quantize import quantize_spec
from lstm_embed.verify import QUANT_BUDGETS

from _isas import open_all_isas

Q16 = np.float32(32767)


def quantize16(v: np.ndarray) -> tuple[np.ndarray, np.float32]:
    """The C quantisation written out in NumPy float32: inv = 32767 / max|v|, q = rint(v * inv) (ties to
    even), scale = max|v| / 32767; zero below 2^-100."""
    v = v.astype(np.float32)
    amax = np.float32(np.abs(v).max()) if v.size else np.float32(0)
    if not amax >= np.float32(2.0 ** -100):
        return np.zeros(v.shape, np.int64), np.float32(0)
    inv = np.float32(Q16 / amax)
    q = np.rint((v * inv).astype(np.float32)).astype(np.int64)
    assert np.abs(q).max() <= 32767
    return q, np.float32(amax / Q16)


def preactivations(cell, bias, in_width, x, h):
    """Gate pre-activations of one int8-a16 step: exact integer sums, then the float32 epilogue
    (bias + acc_x * (sx * scale_x)) + acc_h * (sh * scale_h), every operation rounded to float32."""
    w = cell.weight.astype(np.int64)
    p4 = -(-in_width // 4) * 4
    qx, sx = quantize16(x)
    qh, sh = quantize16(h)
    acc_x = w[:, :in_width] @ qx
    acc_h = w[:, p4:p4 + len(h)] @ qh
    fx = acc_x.astype(np.float64).astype(np.float32)  # exact (|acc| < 2^53), then one rounding
    fh = acc_h.astype(np.float64).astype(np.float32)
    px = fx * (sx * cell.scales[0]).astype(np.float32)
    ph = fh * (sh * cell.scales[1]).astype(np.float32)
    return ((bias + px).astype(np.float32) + ph).astype(np.float32)


def activations(z, hidden):
    z = z.astype(np.float64)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    return np.stack([sig(z[:hidden]), sig(z[hidden:2 * hidden]), np.tanh(z[2 * hidden:3 * hidden]),
                     sig(z[3 * hidden:])])


@pytest.fixture(scope="module")
def two_layers():
    torch.manual_seed(11)
    lstm = torch.nn.LSTM(13, 37, num_layers=2)  # odd widths: padded column groups, a partial row panel
    return lstm, np.random.default_rng(5).standard_normal((60, 13)).astype(np.float32) * 1.7


def test_step_matches_numpy_integer_model(two_layers):
    lstm, xs = two_layers
    spec = quantize_spec(spec_from_state_dict(lstm.state_dict()))
    data = lstm_embed.convert_torch(lstm, dtype="int8-a16")
    H, widths = 37, (13, 37)
    for isa, model in open_all_isas(data).items():
        tr = model.stream().trace(xs)
        worst, unquantised = 0.0, 0.0
        for t in range(len(xs)):
            for layer in range(2):
                x = xs[t] if layer == 0 else tr.h[t, 0]
                h = tr.h[t - 1, layer] if t else np.zeros(H, np.float32)
                cell, bias = spec.int8[layer][0], spec.layers[layer][0].bias.astype(np.float32)
                z = preactivations(cell, bias, widths[layer], x, h)
                worst = max(worst, np.abs(tr.gates[t, layer] - activations(z, H)).max())
                # the same sums with float activations: what the int16 rounding changes (must show)
                zf = (bias.astype(np.float64) + (cell.weight[:, :widths[layer]] * cell.scales[0][:, None]) @ x
                      + (cell.weight[:, -(-widths[layer] // 4) * 4:][:, :H] * cell.scales[1][:, None]) @ h)
                unquantised = max(unquantised, np.abs(activations(z, H) - activations(zf, H)).max())
        # our sigmoid / tanh are within ~2 ulp of float64's; one int16 step of one activation moves a gate
        # by ~1e-6 and more, so this tolerance sees any difference in the integer math
        assert worst <= 4e-7, f"{isa}: gates differ from the NumPy integer model by {worst:.2e}"
        assert unquantised > 10 * 4e-7, "the test cannot tell int16 activations from float ones"


def outputs(model, xs):
    stream = model.stream()
    steps = np.stack([stream.step(x) for x in xs])
    run = model.stream().run(xs)
    streams = [model.stream() for _ in range(3)]
    many = np.stack([model.step_many(streams, np.stack([x, x * 0.5, -x])) for x in xs])
    halves = model.stream()
    split = np.concatenate([halves.run(xs[:37]), halves.run(xs[37:])])  # run continues from the state
    return steps, run, many, split


@pytest.mark.parametrize("proj", [0, 9])
def test_every_isa_and_path_gives_the_same_bits(proj):
    torch.manual_seed(3)
    lstm = torch.nn.LSTM(20, 48, num_layers=2, proj_size=proj)
    head = torch.nn.Linear(proj or 48, 5)
    data = lstm_embed.convert_torch(lstm, head=head, head_activation="softmax", dtype="int8-a16")
    xs = np.random.default_rng(3).standard_normal((90, 20)).astype(np.float32) * 2
    models = open_all_isas(data)
    ref = outputs(models["reference"], xs)
    assert np.array_equal(ref[0], ref[1]), "run differs from step"
    assert np.array_equal(ref[0], ref[2][:, 0]), "step_many's first stream differs from step"
    assert np.array_equal(ref[0], ref[3])
    for isa, model in models.items():
        for way, a, b in zip(("step", "run", "step_many", "run in two parts"), outputs(model, xs), ref):
            assert np.array_equal(a, b), f"{way} on {isa} differs from reference by {np.abs(a - b).max():.2e}"


def test_compact_stream_with_workspace():
    torch.manual_seed(8)
    lstm = torch.nn.LSTM(6, 16)
    model = lstm_embed.Model.from_bytes(lstm_embed.convert_torch(lstm, dtype="int8-a16"))
    xs = np.random.default_rng(1).standard_normal((25, 6)).astype(np.float32)
    a, b = model.stream(compact=True), model.stream()
    np.testing.assert_array_equal(np.stack([a.step(x) for x in xs]), np.stack([b.step(x) for x in xs]))
    assert a.snapshot() == b.snapshot()


def test_no_overflow_at_the_widest_input():
    """Input width 65536 (LSTM_MAX_DIM) with every weight equal: every int8 weight is 127, a constant input
    quantises to 32767 everywhere, so each gate's sum is 127 * 32767 * 65536 (about 2^38, far past
    int32): the gates must still be sigmoid(65536 * w), as in float64."""
    n, w = 65536, 1e-5
    lstm = torch.nn.LSTM(n, 1)
    with torch.no_grad():
        lstm.weight_ih_l0.fill_(w)
        lstm.weight_hh_l0.fill_(w)
        lstm.bias_ih_l0.zero_()
        lstm.bias_hh_l0.zero_()
    data = lstm_embed.convert_torch(lstm, dtype="int8-a16")
    for sign in (1.0, -1.0):
        xs = np.full((3, n), sign, np.float32)
        want_z = sign * n * np.float64(np.float32(w))
        for isa, model in open_all_isas(data).items():
            tr = model.stream().trace(xs)
            z0 = activations(np.full(4, want_z), 1)[:, 0]
            np.testing.assert_allclose(tr.gates[0, 0, :, 0], z0, atol=2e-6, err_msg=f"{isa}, sign {sign}")


def test_accuracy_between_dynamic_and_int8(two_layers):
    """The same int8 weights in all three: against int8 (float activations), int16 activations must add
    far less error than int8 ones (int8-dynamic); against float32 the weights' own rounding dominates."""
    lstm, xs = two_layers
    with torch.no_grad():
        ref = lstm(torch.from_numpy(xs))[0].numpy().astype(np.float64)
    out = {dtype: lstm_embed.Model.from_bytes(lstm_embed.convert_torch(lstm, dtype=dtype)).stream().run(xs)
           for dtype in ("int8", "int8-dynamic", "int8-a16")}
    act_a16 = np.abs(out["int8-a16"] - out["int8"]).max()
    act_dynamic = np.abs(out["int8-dynamic"] - out["int8"]).max()
    assert act_a16 < act_dynamic / 20, (act_a16, act_dynamic)
    err = {dtype: np.abs(y - ref).max() for dtype, y in out.items()}
    assert err["int8-a16"] < err["int8-dynamic"] and err["int8-a16"] <= err["int8"] * 1.05, err


def test_calibration_chooses_it_between_the_others():
    torch.manual_seed(5)
    lstm = torch.nn.LSTM(16, 48, num_layers=3)
    spec = spec_from_state_dict(lstm.state_dict())
    xs = np.random.default_rng(2).normal(size=(2, 300, 16)).astype(np.float32)
    assert INT8_MODES == ("int8-dynamic", "int8-a16", "int8")  # fastest first
    dynamic = calibrate(spec, xs, dtype="int8-dynamic").max_error
    a16 = calibrate(spec, xs, dtype="int8-a16").max_error
    assert a16 < dynamic
    tol = (a16 * dynamic) ** 0.5
    chosen = calibrate(spec, xs, tolerance=tol)
    assert chosen.max_error <= tol and "int8-a16" in chosen.modes and "float32" not in chosen.modes
    assert len(chosen.layer_errors["int8-a16"]) == 3
    data = lstm_embed.convert_torch(lstm, dtype="int8-dynamic", calibration=xs, tolerance=tol)
    assert list(lstm_embed.Model.from_bytes(data).layer_dtypes) == chosen.modes


def test_names_everywhere():
    assert "int8-a16" in DTYPES and "int8-a16" in lstm_embed._lstm.LAYER_DTYPES
    assert QUANT_BUDGETS["int8"] <= QUANT_BUDGETS["int8-a16"] < QUANT_BUDGETS["int8-dynamic"]
    torch.manual_seed(1)
    model = lstm_embed.Model.from_bytes(lstm_embed.convert_torch(torch.nn.LSTM(4, 8), dtype="int8-a16"))
    assert model.dtype == "int8-a16" and model.layer_dtypes == ("int8-a16",)
    # the same stored weights as the other int8 dtypes: the header's layer-dtype byte, fingerprint and CRC
    # may differ, not the tensors
    lstm = torch.nn.LSTM(4, 8)
    a, b = (np.frombuffer(lstm_embed.convert_torch(lstm, dtype=d), np.uint8) for d in ("int8-dynamic", "int8-a16"))
    assert len(a) == len(b) and np.count_nonzero(a != b) <= 1 + 8 + 4


def test_bidirectional_with_projection_runs_like_int8():
    """A bidirectional layer's input (2 x Hr, padded) and the projection's float activations: every ISA
    the same bits, and within a hair of int8 (float activations) against PyTorch."""
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(10, 24, 2, bidirectional=True, proj_size=7)
    xs = np.random.default_rng(0).standard_normal((33, 10)).astype(np.float32)
    with torch.no_grad():
        ref = lstm(torch.from_numpy(xs))[0].numpy()
    int8 = lstm_embed.Model.from_bytes(lstm_embed.convert_torch(lstm, dtype="int8")).stream().run(xs)
    outs = {isa: m.stream().run(xs) for isa, m in open_all_isas(lstm_embed.convert_torch(lstm, dtype="int8-a16")).items()}
    for isa, out in outs.items():
        assert np.array_equal(out, outs["reference"]), isa
    assert np.abs(outs["reference"] - ref).max() <= np.abs(int8 - ref).max() * 1.05 + 1e-6
