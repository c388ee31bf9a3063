"""`lstm-embed verify` tells the truth: the command `convert` suggests passes on correct conversions
(float32, int8, int8-dynamic; a trained model with logits up to ~17 as well as a seeded one) and fails on
a damaged file. The reference is PyTorch float64; PyTorch float32's own error is reported beside ours."""
import json
import os
import shlex
import subprocess
import sys

import numpy as np
import pytest
import torch
from _convert_helpers import Tagger, seeded
from torch import nn

import lstm_embed
from lstm_embed.checkpoint import find_lstm
from lstm_embed.verify import QUANT_BUDGETS, default_limit, verify

sklearn_datasets = pytest.importorskip("sklearn.datasets")

torch.set_num_threads(1)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(lstm_embed.__file__)))
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
DTYPES = ("float32", "int8", "int8-dynamic")


class ProjReader(nn.Module):
    """Reads an 8x8 digit row by row: 2-layer LSTM with projection, Linear head on every step."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(8, 64, num_layers=2, proj_size=24, batch_first=True)
        self.fc = nn.Linear(24, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.lstm(x)[0])


def run(*args, cwd):
    proc = subprocess.run([sys.executable, "-m", "lstm_embed", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env=ENV)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def damage(state: dict) -> dict:
    """The same tensors with the input and forget gate rows of the last layer's W_hh swapped."""
    state = {k: v.clone() for k, v in state.items()}
    last = max(int(k.rsplit("_l", 1)[1]) for k in state if k.startswith("lstm.weight_hh_l"))
    w = state[f"lstm.weight_hh_l{last}"]
    h = w.shape[0] // 4
    state[f"lstm.weight_hh_l{last}"] = torch.cat([w[h:2 * h], w[:h], w[2 * h:]])
    return state


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A folder with a trained ProjReader checkpoint (max logit ~17 on N(0,1) data), its damaged twin, a
    seeded 2-layer Tagger, and real inputs (held-out digits, (N, 8, 8)) for --calibration / --data."""
    d = tmp_path_factory.mktemp("verify")
    digits = sklearn_datasets.load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    xs, ys = torch.from_numpy(images[:1400]), torch.from_numpy(digits.target[:1400])
    torch.manual_seed(0)
    model = ProjReader()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(25):
        for batch in torch.randperm(len(xs)).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xs[batch])[:, -1], ys[batch]).backward()
            opt.step()
    model.eval()
    torch.save({"epoch": 25, "model_state_dict": model.state_dict(), "optimizer": opt.state_dict()},
               d / "proj.pt")
    torch.save({"model_state_dict": damage(model.state_dict())}, d / "proj_damaged.pt")
    tagger = seeded(Tagger, num_layers=2)
    torch.save(tagger.state_dict(), d / "tagger.pt")
    torch.save(damage(tagger.state_dict()), d / "tagger_damaged.pt")
    np.save(d / "digits.npy", images[1400:1500])
    return d, model, images[1400:]


def suggested(stdout: str) -> list[str]:
    """The `check it:` command of convert's output, to run as `python -m lstm_embed ...`."""
    line = next(s for s in stdout.splitlines() if s.startswith("check it: "))
    words = shlex.split(line[len("check it: "):])
    assert words[:2] == ["lstm-embed", "verify"]
    return words[1:]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("src", ["proj.pt", "tagger.pt"])
def test_the_suggested_verify_command_passes(models, src, dtype):
    d = models[0]
    out = f"{src[:-3]}_{dtype}.lstm"
    proc = run("convert", src, "-o", out, "--dtype", dtype, cwd=d)
    assert proc.returncode == 0, proc.stderr
    words = suggested(proc.stdout)
    assert words == ["verify", out, "--against", src]
    proc = run(*words, "--json", cwd=d)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["passed"] and report["dtype"] == dtype and report["steps"] == 1000
    if dtype == "float32":
        assert report["max_abs_error"] <= 4 * report["torch_fp32_max_abs_error"] + 1e-6 * report["max_abs_output"]
    else:
        assert report["int8_weights_max_abs_error"] > 0


@pytest.mark.parametrize("dtype", ["int8", "int8-dynamic"])
def test_suggested_command_with_calibration_uses_that_data(models, dtype):
    """With --calibration the suggestion verifies on the same real inputs, where int8 is within the plain
    per-dtype budget (on N(0,1) data, far from digits' [0, 1], the rounded weights alone are off by more)."""
    d = models[0]
    proc = run("convert", "proj.pt", "-o", "cal.lstm", "--dtype", dtype, "--calibration", "digits.npy", cwd=d)
    assert proc.returncode == 0, proc.stderr
    words = suggested(proc.stdout)
    assert words == ["verify", "cal.lstm", "--against", "proj.pt", "--data", "digits.npy"]
    proc = run(*words, cwd=d)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "data: 8 steps x 100 sequences of digits.npy" in proc.stdout
    assert "int8 weights alone (PyTorch float64 with the file's rounded weights) vs float64" in proc.stdout


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_damaged_file_fails(models, dtype):
    d = models[0]
    assert run("convert", "proj_damaged.pt", "-o", "bad.lstm", "--dtype", dtype, cwd=d).returncode == 0
    proc = run("verify", "bad.lstm", "--against", "proj.pt", cwd=d)
    assert proc.returncode == 1, proc.stdout
    assert ": FAIL" in proc.stdout and "against PyTorch float64 is above the limit" in proc.stderr
    proc = run("verify", "bad.lstm", "--against", "proj.pt", "--data", "digits.npy", cwd=d)
    assert proc.returncode == 1, proc.stdout


def test_float32_report_on_the_trained_model(models):
    """Ours is as close to float64 as PyTorch float32 is (logits up to ~17: an absolute 1e-5 would not
    say anything about the conversion)."""
    d, model, images = models
    ckpt = find_lstm(model.state_dict())
    converted = lstm_embed.Model.from_bytes(ckpt.convert())
    xs = np.random.default_rng(0).standard_normal((1000, 8)).astype(np.float32)
    report = verify(converted, ckpt, xs)
    assert report.scale > 10 and report.torch_max_abs > 1e-6
    assert report.passed and report.max_abs <= 4 * report.torch_max_abs + 1e-6 * report.scale
    assert report.rounding_max is None and report.tolerance is None
    real = verify(converted, ckpt, images[:50])  # (N, T, I): 50 digits, each on a fresh stream
    assert (real.sequences, real.steps) == (50, 8) and real.passed
    assert not verify(converted, ckpt, xs, tolerance=0.0).passed


def test_quantized_budgets_and_damage_on_real_data(models):
    """On the digits the int8 files are within the per-dtype budget of max|output| alone, and the damaged
    conversion is far outside it."""
    d, model, images = models
    ckpt = find_lstm(model.state_dict())
    bad = find_lstm(damage(model.state_dict()))
    for dtype in ("int8", "int8-dynamic"):
        report = verify(lstm_embed.Model.from_bytes(ckpt.convert(dtype=dtype)), ckpt, images[:100])
        assert report.passed and report.relative < QUANT_BUDGETS[dtype] / 2
        assert report.rounding_max <= report.max_abs * 1.01
        broken = verify(lstm_embed.Model.from_bytes(bad.convert(dtype=dtype)), ckpt, images[:100])
        assert not broken.passed and broken.relative > 2 * QUANT_BUDGETS[dtype]


def test_default_limit_rules():
    assert default_limit(["float32"], 1e-5, 10.0) == (pytest.approx(4e-5 + 1e-5), default_limit(["float32"], 0, 1)[1])
    limit, rule = default_limit(["float32", "int8-dynamic"], 0.0, 2.0, rounding_max=0.5)
    assert limit == pytest.approx(2e-6 + 0.2 + 1.0) and rule.startswith("int8-dynamic: 0.1 x max|output|")
    assert default_limit(["int8"], 0.0, 0.0)[0] == pytest.approx(1e-6 + 5e-2)  # zero output: scale 1
