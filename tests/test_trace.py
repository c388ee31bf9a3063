"""Gate traces (issue 14): Stream.trace from the C step itself, its consistency with the LSTM equations and
with step, and `lstm-embed trace` drawing a picture that holds the data."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import lstm_embed
from lstm_embed import Model, NonFiniteInputError, ShapeError
from lstm_embed.trace import Trace

pytest.importorskip("matplotlib", reason="the picture needs matplotlib (the plot extra)")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(lstm_embed.__file__)))
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
DTYPES = ("float32", "int8", "int8-dynamic")


def make_lstm(proj=0, layers=2, seed=4):
    torch.manual_seed(seed)
    return torch.nn.LSTM(7, 19, num_layers=layers, proj_size=proj)


@pytest.fixture(scope="module")
def xs():
    return np.random.default_rng(2).standard_normal((45, 7)).astype(np.float32) * 1.5


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("proj", [0, 5])
def test_trace_is_the_step(xs, dtype, proj):
    lstm = make_lstm(proj)
    model = Model.from_bytes(lstm_embed.convert_torch(lstm, head=torch.nn.Linear(proj or 19, 3), dtype=dtype))
    s, ref = model.stream(), model.stream()
    tr = s.trace(xs)
    T, L, H, Hr = len(xs), 2, 19, proj or 19
    assert (tr.gates.shape, tr.c.shape, tr.h.shape, tr.y.shape) == ((T, L, 4, H), (T, L, H), (T, L, Hr), (T, 3))
    np.testing.assert_array_equal(tr.y, np.stack([ref.step(x) for x in xs]))  # the same bits as step
    assert s.snapshot() == ref.snapshot()
    gi, gf, gg, go = (tr.gates[:, :, k] for k in range(4))
    assert gi.min() >= 0 and gi.max() <= 1 and gf.min() >= 0 and go.max() <= 1 and np.abs(gg).max() <= 1
    # c_t = f c_{t-1} + i g. Quantised layers: as the C code computes it, each operation rounded to float32.
    # fp32 layers: the fused cell (elementwise_cell_f32.h) forms c from the unrounded activations in double,
    # so it is within the activations' float rounding (2^-24 each) of the same from the traced ones
    prev = np.vstack([np.zeros((1, L, H), np.float32), tr.c[:-1]])
    if dtype == "float32":
        f64 = np.float64
        fc, ig = gf.astype(f64) * prev.astype(f64), gi.astype(f64) * gg.astype(f64)
        assert np.all(np.abs(tr.c - (fc + ig)) <= 2.0**-22 * (np.abs(fc) + np.abs(ig)) + 1e-30)
    else:
        np.testing.assert_array_equal(tr.c, (gf * prev) + (gi * gg))
    if proj == 0:  # h = o tanh(c), to our tanh's accuracy
        np.testing.assert_allclose(tr.h, go * np.tanh(tr.c), atol=2e-6)


def test_trace_gates_match_a_float64_lstm(xs):
    """The gate activations are the LSTM's: against the same equations in float64 NumPy."""
    lstm = make_lstm(layers=1)
    tr = Model.from_bytes(lstm_embed.convert_torch(lstm)).stream().trace(xs)
    sd = {k: v.double().numpy() for k, v in lstm.state_dict().items()}
    h, c = np.zeros(19), np.zeros(19)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    for t, x in enumerate(xs.astype(np.float64)):
        z = sd["weight_ih_l0"] @ x + sd["weight_hh_l0"] @ h + sd["bias_ih_l0"] + sd["bias_hh_l0"]
        i, f, g, o = sig(z[:19]), sig(z[19:38]), np.tanh(z[38:57]), sig(z[57:])
        c = f * c + i * g
        h = o * np.tanh(c)
        np.testing.assert_allclose(tr.gates[t, 0], np.stack([i, f, g, o]), atol=5e-6)
        np.testing.assert_allclose(tr.c[t, 0], c, atol=5e-6)


def test_compact_stream_trace_and_errors(xs):
    model = Model.from_bytes(lstm_embed.convert_torch(make_lstm()))
    compact, full = model.stream(compact=True), model.stream()
    a, b = compact.trace(xs), full.trace(xs)
    np.testing.assert_array_equal(a.gates, b.gates)
    assert compact.snapshot() == full.snapshot() and compact.compact
    err = a.errors(b)
    assert err["gates"].shape == (2, 4) and not err["gates"].any() and float(err["y"]) == 0
    q = Model.from_bytes(lstm_embed.convert_torch(make_lstm(), dtype="int8-dynamic")).stream().trace(xs)
    qerr = q.errors(b)
    assert (qerr["gates"] > 0).all() and float(qerr["y"]) > 0  # every quantised gate departs a little
    sat = b.saturation()
    assert sat.shape == (2, 4) and ((sat >= 0) & (sat <= 1)).all()
    assert b.cell_range().shape == (len(xs), 2)
    with pytest.raises(ShapeError):
        a.errors(Trace(a.gates[:3], a.c[:3], a.h[:3], a.y[:3]))


def test_trace_refuses_bad_input_and_leaves_the_stream(xs):
    model = Model.from_bytes(lstm_embed.convert_torch(make_lstm()))
    s = model.stream()
    s.run(xs[:5])
    before = s.snapshot()
    bad = xs.copy()
    bad[30, 2] = np.nan
    with pytest.raises(NonFiniteInputError):
        s.trace(bad)
    with pytest.raises(ShapeError):
        s.trace(xs[:, :3])
    assert s.snapshot() == before
    empty = s.trace(xs[:0])
    assert empty.gates.shape == (0, 2, 4, 19) and s.snapshot() == before


def test_cli_draws_the_trace(tmp_path, xs):
    import matplotlib.image

    lstm = make_lstm()
    head = torch.nn.Linear(19, 2)
    torch.save({"lstm": lstm.state_dict(), "head": head.state_dict()}, tmp_path / "src.pt")
    (tmp_path / "q.lstm").write_bytes(lstm_embed.convert_torch(lstm, head=head, dtype="int8-dynamic"))
    np.save(tmp_path / "x.npy", xs)
    proc = subprocess.run([sys.executable, "-m", "lstm_embed", "trace", "q.lstm", "--data", "x.npy", "--against",
                           "src.pt", "-o", "trace.png"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env=ENV)
    assert proc.returncode == 0, proc.stderr
    assert "layer 0:" in proc.stdout and "layer 1:" in proc.stdout and "max |gate error|" in proc.stdout
    img = matplotlib.image.imread(tmp_path / "trace.png")
    assert img.shape[0] > 400 and img.shape[1] > 1000
    rgb = img[..., :3].reshape(-1, 3)
    colours = np.unique((rgb * 255).astype(np.uint8), axis=0)
    assert len(colours) > 200, "the picture is (nearly) blank"  # heatmaps of real data have many colours
    assert rgb.std() > 0.1
