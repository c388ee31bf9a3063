"""int16x8 (issue 16, docs/int16x8.md): integer-only models.

- The C step (through the binding: ``Stream.step_int``, ``Stream.step``, ``run``, ``Model.step_many``, on
  every ISA this CPU runs) gives the bits of the independent NumPy reference (tests/reference_int.py,
  written from the specification, parsing the file itself) on random models (1-3 layers, every head
  activation and no head; inputs of large and tiny range, inputs beyond the calibration range, the whole
  int16 range) and on a trained model.
- The reference itself follows the float model (what the integer formats promise), and the digits model
  keeps its accuracy within 1 point.
- The float entry points quantise and scale exactly as specified; snapshots and pickles round-trip.
- The converter computes the parameters as specified and refuses what the integer step cannot hold.
"""
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import lstm_embed
from lstm_embed.convert import DTYPES, spec_from_state_dict
from lstm_embed.errors import ConversionError
from lstm_embed.format import write_model
from lstm_embed.quantize_int import integer_spec, multiplier_shift
from lstm_embed.verify import QUANT_BUDGETS

from _isas import open_all_isas
from conftest import build_head, build_lstm
from reference_int import EXP_TABLE, TANH_TABLE, IntModel

HEADS = [None, "none", "relu", "sigmoid", "tanh", "softmax"]
TORCH_ACT = {None: None, "none": None, "relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
             "softmax": lambda v: torch.softmax(v, -1)}


def make(layers=1, inputs=5, hidden=12, head=None, out=4, seed=0, scale=1.0, steps=20, n=3):
    """(lstm, linear or None, calibration (n, steps, inputs) float32): a seeded model and data of range
    ``scale``."""
    lstm = build_lstm(inputs, hidden, layers, seed=seed)
    linear = None if head is None else build_head(hidden, out, seed=seed)
    xs = np.random.default_rng(seed).normal(0, scale, (n, steps, inputs)).astype(np.float32)
    return lstm, linear, xs


def convert(lstm, linear, head, xs, **kw) -> bytes:
    return lstm_embed.convert_torch(lstm, head=linear, head_activation=head if linear is not None else None,
                                    dtype="int16x8", calibration=xs, **kw)


def torch_float(lstm, linear, head, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        y = lstm(torch.from_numpy(x)[:, None])[0][:, 0]
        if linear is not None:
            y = linear(y)
            if TORCH_ACT[head] is not None:
                y = TORCH_ACT[head](y)
    return y.numpy()


# --- the reference and the converter, without the C step ------------------------------------------------

def test_tables_are_the_specified_ones():
    assert len(TANH_TABLE) == len(EXP_TABLE) == 513
    assert TANH_TABLE[0] == 0 and TANH_TABLE[512] == 32767 and EXP_TABLE[0] == 32767
    assert all(a <= b for a, b in zip(TANH_TABLE, TANH_TABLE[1:]))
    assert all(a >= b for a, b in zip(EXP_TABLE, EXP_TABLE[1:]))


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("layers", [1, 3])
def test_reference_follows_the_float_model(head, layers):
    """The integer step of the specification stays within 3e-2 x max|y| of PyTorch float32 (measured: up
    to ~1e-2) on data of the calibration's range."""
    lstm, linear, xs = make(layers, head=head, seed=layers)
    ref = IntModel(convert(lstm, linear, head, xs))
    for x in xs:
        want = torch_float(lstm, linear, head, x)
        got = ref.stream().run(x)
        assert np.abs(got - want).max() <= 3e-2 * max(np.abs(want).max(), 1e-3)


def test_parameters_are_the_specified_ones():
    """QPARAMS, HEAD_QPARAMS and IO_SCALES recomputed here from the spec's formulas (float64 with the
    float32 scales) equal what the converter wrote."""
    lstm, linear, xs = make(2, head="relu", seed=4)
    spec = integer_spec(spec_from_state_dict(lstm.state_dict(), linear.state_dict(), "relu"), list(xs))
    p = spec.int16x8
    input_scale = np.float32(np.abs(xs).max() / 32767)
    assert p.io_scales[0] == input_scale and p.io_scales[1] == np.float32(1 / np.float64(input_scale))
    assert p.io_scales[3] == 0
    with torch.no_grad():
        y = linear(lstm(torch.from_numpy(xs).transpose(0, 1))[0]).numpy()
    assert p.io_scales[2] == pytest.approx(np.abs(y).max() / 32767, rel=1e-5)
    for k, qp in enumerate(p.qparams):
        scales = spec.int8[k][0].scales.astype(np.float64)
        s_in = float(input_scale) if k == 0 else 2.0 ** -15
        for part, s in ((0, s_in), (1, 2.0 ** -15)):
            m = scales[part] * s * 2.0 ** 20
            mm, ss = qp[2 * part].astype(np.int64), qp[2 * part + 1].astype(np.int64)
            assert ((mm >= 2 ** 30) & (mm < 2 ** 31) | (ss == 62)).all() and ((ss >= 1) & (ss <= 62)).all()
            for r in range(0, len(m), 7):
                assert mm[r] == round(m[r] * 2.0 ** int(ss[r]))  # Python's round: half to even, exact here
        bias = spec.layers[k][0].bias.astype(np.float64)
        assert (qp[4] == np.rint(bias * 2 ** 20)).all()
    hq = p.head_qparams.astype(np.int64)
    assert (hq[2] == np.rint(spec.head_b.astype(np.float64) / np.float64(p.io_scales[2]))).all()


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 2.0 ** 29, allow_nan=False, allow_infinity=False) | st.floats(0, 1e-12))
def test_multiplier_and_shift(m):
    """M * 2^-S is m to within half a step of M; M in [2^30, 2^31) unless S is at its cap 62."""
    mm, s = multiplier_shift(np.array([m]))
    mm, s = int(mm[0]), int(s[0])
    assert 1 <= s <= 62 and 0 <= mm < 2 ** 31
    assert 2 ** 30 <= mm or s == 62
    assert abs(mm - m * 2.0 ** s) <= 0.5


def test_multiplier_beyond_range_is_refused():
    with pytest.raises(ConversionError, match="shift below 1"):
        multiplier_shift(np.array([2.0 ** 30]))


def test_conversion_refusals():
    lstm, linear, xs = make(head="relu")
    with pytest.raises(ConversionError, match="needs calibration data: pass calibration="):
        lstm_embed.convert_torch(lstm, dtype="int16x8")
    with pytest.raises(ConversionError, match="takes no tolerance"):
        convert(lstm, None, None, xs, tolerance=0.1)
    with pytest.raises(ConversionError, match="projection"):
        lstm_embed.convert_torch(torch.nn.LSTM(4, 8, proj_size=3), dtype="int16x8",
                                 calibration=np.ones((5, 4), np.float32))
    with pytest.raises(ConversionError, match="bidirectional"):
        lstm_embed.convert_torch(torch.nn.LSTM(4, 8, bidirectional=True), dtype="int16x8",
                                 calibration=np.ones((5, 4), np.float32))
    for module, x, what in ((torch.nn.LSTM(513, 4), np.ones((2, 513)), "input_size"),
                            (torch.nn.LSTM(4, 513), np.ones((2, 4)), "hidden_size")):
        with pytest.raises(ConversionError, match=f"{what}.* <= 512"):
            lstm_embed.convert_torch(module, dtype="int16x8", calibration=x.astype(np.float32))
    with pytest.raises(ConversionError, match="head size <= 512"):
        lstm_embed.convert_torch(torch.nn.LSTM(4, 8), head=torch.nn.Linear(8, 513), dtype="int16x8",
                                 calibration=np.ones((2, 4), np.float32))
    with pytest.raises(ConversionError, match="shift below 1.*calibration"):
        convert(lstm, None, None, xs * np.float32(1e12))
    with pytest.raises(ConversionError, match="features per step"):
        convert(lstm, None, None, xs[..., :3])
    big = build_lstm(5, 12, seed=0)
    with torch.no_grad():
        big.bias_ih_l0[3] = 600.0
        big.bias_hh_l0[3] = 0.0
    with pytest.raises(ConversionError, match="layer 0 \\(gate bias\\): a bias of 600"):
        convert(big, None, None, xs)
    spec = spec_from_state_dict(build_lstm(5, 12, 2).state_dict())
    spec.layer_dtypes = ["int16x8", "float32"]
    with pytest.raises(ConversionError, match="every layer or none"):
        write_model(spec)
    spec.layer_dtypes = ["int16x8", "int16x8"]
    with pytest.raises(ConversionError, match="need their integer parameters"):
        write_model(spec)


def test_dtype_everywhere():
    assert "int16x8" in DTYPES and "int16x8" in QUANT_BUDGETS
    assert "int16x8" in lstm_embed._lstm.LAYER_DTYPES


def test_conversion_report_names_the_scales():
    lstm, linear, xs = make(head="sigmoid")
    report = convert(lstm, linear, "sigmoid", xs, report=True)
    assert report.dtypes == ["int16x8"] and report.int_scales[1] == 2.0 ** -15
    assert report.int_scales[0] == pytest.approx(np.abs(xs).max() / 32767, rel=1e-6)
    assert "integer-only: input scale" in str(report)
    mx, mean, top = report.int_error
    assert 0 < mean <= mx < 3e-2 * top and "error against float32 on the calibration data" in str(report)
    with pytest.raises(ConversionError, match="too small"):
        convert(lstm, linear, "sigmoid", np.full((1, 3, 5), 1e-36, np.float32))


# --- the C step against the reference ---------------------------------------------------------------------

def int_inputs(rng, steps, inputs, ref_model, xs_float):
    """int16 inputs: the calibration data quantised, then the whole int16 range (saturating)."""
    s = ref_model.stream()
    q = np.stack([s.quantize_input(x) for x in xs_float])
    wild = rng.integers(-32768, 32768, (steps, inputs)).astype(np.int16)
    return np.concatenate([q, wild, np.full((3, inputs), 32767, np.int16), np.full((3, inputs), -32768, np.int16)])


def check_identity(data: bytes, xs_float: np.ndarray, seed: int = 0) -> None:
    """Every entry point of the C library on every ISA gives the reference's bits on ``xs_float`` (float
    entries, including values beyond the calibration range) and on int16 inputs over the whole range."""
    ref = IntModel(data)
    rng = np.random.default_rng(seed)
    xq = int_inputs(rng, 20, ref.input_size, ref, xs_float)
    rs = ref.stream()
    want_q = np.stack([rs.step_int(x) for x in xq])
    want_f = ref.stream().run(xs_float)
    for isa, model in open_all_isas(data).items():
        assert model.is_integer and model.dtype == "int16x8"
        assert np.float32(model.input_scale) == ref.input_scale
        assert np.float32(model.output_scale) == ref.output_scale
        s = model.stream()
        got_q = np.stack([s.step_int(x) for x in xq])
        assert got_q.dtype == np.int16
        np.testing.assert_array_equal(got_q, want_q, err_msg=isa)
        s, si = model.stream(), model.stream()
        np.testing.assert_array_equal(np.stack([s.step(x) for x in xs_float]), want_f, err_msg=isa)
        yq = np.stack([si.step_int(ref.stream().quantize_input(x)) for x in xs_float])
        np.testing.assert_array_equal(yq.astype(np.float32) * np.float32(model.output_scale), want_f)
        assert s.snapshot() == si.snapshot()  # float step and integer step: the same state bits
        np.testing.assert_array_equal(model.stream().run(xs_float), want_f, err_msg=isa)
        compact = model.stream(compact=True)
        np.testing.assert_array_equal(np.stack([compact.step(x) for x in xs_float]), want_f, err_msg=isa)
        streams = [model.stream() for _ in range(3)]
        many = np.stack([model.step_many(streams, np.stack([x] * 3)) for x in xs_float], axis=1)
        for row in many:
            np.testing.assert_array_equal(row, want_f, err_msg=isa)


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("layers", [1, 2, 3])
def test_c_step_equals_reference(head, layers):
    lstm, linear, xs = make(layers, inputs=7, hidden=20, head=head, out=5, seed=10 * layers)
    data = convert(lstm, linear, head, xs)
    beyond = xs[0] * np.float32(4)  # the float entry saturates at the calibration range
    check_identity(data, np.concatenate([xs[0], beyond]), seed=layers)


@pytest.mark.parametrize("scale", [1e-4, 1e3])
def test_c_step_equals_reference_small_and_large_ranges(scale):
    lstm, linear, xs = make(2, inputs=9, hidden=16, head="none", out=3, seed=5, scale=scale)
    check_identity(convert(lstm, linear, "none", xs), xs[1])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2 ** 16), layers=st.integers(1, 3), inputs=st.integers(1, 40),
       hidden=st.integers(1, 40), head=st.sampled_from(HEADS), out=st.integers(1, 12),
       log_scale=st.floats(-6, 6), forget=st.floats(0, 6))
def test_c_step_equals_reference_hypothesis(seed, layers, inputs, hidden, head, out, log_scale, forget):
    """Random sizes, ranges and a positive forget bias (large |c|: the Q11.20 cell state at work)."""
    lstm = build_lstm(inputs, hidden, layers, seed=seed, forget_bias=forget)
    linear = None if head is None else build_head(hidden, out, seed=seed)
    xs = np.random.default_rng(seed).normal(0, 10.0 ** log_scale, (2, 15, inputs)).astype(np.float32)
    check_identity(convert(lstm, linear, head, xs), np.concatenate([xs[1], xs[0] * np.float32(3)]), seed)


def test_cell_state_saturates_like_the_reference():
    """Gates saturated open (biases +-20) drive c past 2048 within ~2100 steps: the Q11.20 cell clamps at
    +-(2^31 - 1) and the C step still gives the reference's bits (h stays tanh(2048) * o)."""
    lstm = build_lstm(3, 4, seed=1)
    with torch.no_grad():
        lstm.bias_ih_l0[:12] = 20.0
        lstm.bias_ih_l0[8:10] = -20.0  # two cells count down, two up
        lstm.bias_ih_l0[12:] = 20.0
    xs = np.random.default_rng(1).normal(0, 1, (1, 2200, 3)).astype(np.float32)
    data = convert(lstm, None, None, xs)
    ref = IntModel(data)
    rs = ref.stream()
    want = rs.run(xs[0])
    assert sorted(np.concatenate(rs.c).tolist()) == [-(2 ** 31 - 1)] * 2 + [2 ** 31 - 1] * 2
    for isa, model in open_all_isas(data).items():
        np.testing.assert_array_equal(model.stream().run(xs[0]), want, err_msg=isa)


def test_trace_reports_the_integer_values():
    """The trace of an integer model: i, f, g, o and h as q / 2^15, c as c / 2^20, y as step's."""
    lstm, linear, xs = make(2, head="softmax", seed=6)
    data = convert(lstm, linear, "softmax", xs)
    rs = IntModel(data).stream()
    trace = lstm_embed.Model.from_bytes(data).stream().trace(xs[0])
    q15, q20 = np.float32(2.0 ** -15), np.float32(2.0 ** -20)
    for t, x in enumerate(xs[0]):
        np.testing.assert_array_equal(trace.y[t], rs.step(x))
        for k in range(2):
            np.testing.assert_array_equal(trace.gates[t, k], rs.gates[k].astype(np.float32) * q15)
            np.testing.assert_array_equal(trace.h[t, k], rs.h[k].astype(np.float32) * q15)
            np.testing.assert_array_equal(trace.c[t, k], rs.c[k].astype(np.float32) * q20)


def test_widest_model_at_full_scale():
    """r4(input) = hidden = head = 512 with every weight at +-127 and inputs at -32768 / 32767: the largest
    sums the specification allows (127 * 32768 * 512 < 2^31) on every ISA, the reference's bits."""
    lstm = torch.nn.LSTM(509, 512)
    head = torch.nn.Linear(512, 512)
    rng = np.random.default_rng(3)
    with torch.no_grad():
        for p in (*lstm.parameters(), *head.parameters()):
            p.copy_(torch.from_numpy(np.where(rng.random(p.shape) < 0.5, -0.01, 0.01).astype(np.float32)))
        lstm.weight_ih_l0[:, :] = 0.01  # every row of W_ih at +127: one sign, the largest |A_x|
    xs = np.ones((1, 4, 509), np.float32)
    data = lstm_embed.convert_torch(lstm, head=head, head_activation="none", dtype="int16x8", calibration=xs)
    ref = IntModel(data)
    assert (ref.layers[0][0][:, :509] == 127).all()
    xq = np.stack([np.full(509, v, np.int16) for v in (-32768, -32768, 32767, -32768, 32767, 0)])
    rs = ref.stream()
    want = np.stack([rs.step_int(x) for x in xq])
    for isa, model in open_all_isas(data).items():
        s = model.stream()
        np.testing.assert_array_equal(np.stack([s.step_int(x) for x in xq]), want, err_msg=isa)


def test_integer_api_on_other_models():
    """is_integer is False elsewhere; the scales and step_int say why they do not apply; step_int takes
    int16 only."""
    lstm, linear, xs = make()
    for dtype in ("float32", "int8-a16"):
        model = lstm_embed.Model.from_bytes(lstm_embed.convert_torch(lstm, dtype=dtype))
        assert not model.is_integer
        with pytest.raises(lstm_embed.UnsupportedError):
            model.input_scale
        with pytest.raises(lstm_embed.UnsupportedError):
            model.stream().step_int(np.zeros(5, np.int16))
    model = lstm_embed.Model.from_bytes(convert(lstm, None, None, xs))
    with pytest.raises(lstm_embed.DTypeError, match="int16"):
        model.stream().step_int(np.zeros(5, np.int32))
    with pytest.raises(lstm_embed.ShapeError):
        model.stream().step_int(np.zeros(4, np.int16))


def test_integer_state_snapshot_and_pickle():
    lstm, linear, xs = make(2, head="tanh", seed=3)
    data = convert(lstm, linear, "tanh", xs)
    ref = IntModel(data)
    model = lstm_embed.Model.from_bytes(data)
    s = model.stream()
    rs = ref.stream()
    for x in xs[0][:10]:
        s.step(x)
        rs.step(x)
    blob = s.snapshot()
    words = np.frombuffer(blob[24:-4], dtype="<i4")  # h of every layer, then c of every layer, as int32
    np.testing.assert_array_equal(words, np.concatenate([*rs.h, *rs.c]))
    restored = model.stream()
    restored.restore(blob)
    clone = pickle.loads(pickle.dumps(s))
    rest = xs[0][10:]
    want = rs.run(rest)
    for t in (restored, clone, s):
        np.testing.assert_array_equal(t.run(rest), want)
    again = pickle.loads(pickle.dumps(model))
    assert again.to_bytes() == data and again.is_integer


class DigitReader(torch.nn.Module):
    """tests/test_trained.py's model: an 8x8 image row by row, classes from the last step."""

    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(8, 32, batch_first=True)
        self.fc = torch.nn.Linear(32, 10)

    def forward(self, images):
        return self.fc(self.lstm(images)[0])


@pytest.fixture(scope="module")
def digits():
    """(trained DigitReader, int16x8 file calibrated on the training images, x_test, y_test): the digits
    of tests/_digits.py, trained in seconds with test_trained's seeds."""
    from _digits import digits_split, train

    x_train, x_test, y_train, y_test = digits_split()
    torch.manual_seed(0)
    net = DigitReader()
    train(net, torch.optim.Adam(net.parameters(), lr=0.01), x_train, y_train, 12)
    data = lstm_embed.convert_torch(net.lstm, head=net.fc, head_activation="softmax", dtype="int16x8",
                                    calibration=x_train)
    return net, data, x_test, y_test


def test_trained_digits_model(digits):
    """The C step equals the reference on held-out images, and int16x8 accuracy is within 1 point of fp32
    (calibrated on the training images, measured on the held-out ones)."""
    net, data, x_test, y_test = digits
    fp32 = lstm_embed.Model.from_bytes(lstm_embed.convert_torch(net.lstm, head=net.fc, head_activation="softmax"))
    model, ref = lstm_embed.Model.from_bytes(data), IntModel(data)

    def last_step(m) -> np.ndarray:
        streams = [m.stream() for _ in x_test]
        return np.stack([m.step_many(streams, x_test[:, t]) for t in range(8)], axis=1)[:, -1]

    p_int = last_step(model)
    for i in range(0, len(x_test), 45):
        np.testing.assert_array_equal(ref.stream().run(x_test[i])[-1], p_int[i])
    acc_fp32 = float((last_step(fp32).argmax(1) == y_test).mean())
    acc_int = float((p_int.argmax(1) == y_test).mean())
    print(f"digits: int16x8 {acc_int:.4f}, fp32 {acc_fp32:.4f}")
    assert acc_fp32 > 0.9 and abs(acc_int - acc_fp32) <= 0.01


def test_verify_budget(digits):
    """verify's int16x8 budget: the digits file passes it with room on held-out images (within the
    calibration range: pixels in [0, 1]); the same file made from swapped gate rows fails it."""
    from lstm_embed.checkpoint import find_lstm
    from lstm_embed.verify import verify

    net, data, x_test, _ = digits
    ckpt = find_lstm(net.state_dict())
    report = verify(lstm_embed.Model.from_bytes(data), ckpt, x_test[:100])
    assert report.passed and report.relative < QUANT_BUDGETS["int16x8"] / 2 and "calibration range" in report.rule
    state = {k: v.clone() for k, v in net.state_dict().items()}
    w = state["lstm.weight_hh_l0"]
    state["lstm.weight_hh_l0"] = torch.cat([w[32:64], w[:32], w[64:]])
    bad = find_lstm(state).convert(head_activation="softmax", dtype="int16x8", calibration=x_test[100:])
    broken = verify(lstm_embed.Model.from_bytes(bad), ckpt, x_test[:100])
    assert not broken.passed


def test_command_line(tmp_path, capsys):
    """convert --dtype int16x8 needs --calibration (and says so), writes the file; info shows the scales;
    verify passes it with the int16x8 rule."""
    from lstm_embed.cli import main

    lstm, linear, xs = make(2, head="relu", seed=8)
    torch.save({"lstm": lstm.state_dict(), "fc": linear.state_dict()}, tmp_path / "m.pt")
    np.save(tmp_path / "cal.npy", xs)
    src, out, cal = str(tmp_path / "m.pt"), str(tmp_path / "m.lstm"), str(tmp_path / "cal.npy")
    assert main(["convert", src, "-o", out, "--dtype", "int16x8", "--head-activation", "relu"]) == 1
    assert "--calibration X.npy" in capsys.readouterr().err
    assert main(["convert", src, "-o", out, "--dtype", "int16x8", "--head-activation", "relu",
                 "--calibration", cal]) == 0
    said = capsys.readouterr().out
    model = lstm_embed.Model.load(out)
    assert model.is_integer and f"input scale {model.input_scale:.6g}" in said
    assert main(["info", out]) == 0
    info = capsys.readouterr().out
    assert "integer-only    yes" in info and f"output scale {model.output_scale:.6g}" in info
    assert main(["verify", out, "--against", src, "--data", cal]) == 0
    assert "int16x8: 0.05 x max|output|" in capsys.readouterr().out
