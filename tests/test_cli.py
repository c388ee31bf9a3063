"""The lstm-embed command through a subprocess: outputs, exit codes (0 ok, 1 failure, 2 usage) and the
messages of each error case, on stderr and without tracebacks."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from _convert_helpers import Tagger, seeded
from torch import nn

import lstm_embed
from lstm_embed._lstm import FORMAT

torch.set_num_threads(1)


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(lstm_embed.__file__)))
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))


def cli(*args, cwd, env=None):
    """Run ``python -m lstm_embed ARGS`` in ``cwd``; returns the CompletedProcess (text)."""
    proc = subprocess.run([sys.executable, "-m", "lstm_embed", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=env or ENV)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def console(*args, cwd, tmp_path, env=None):
    """Run ARGS through a script like the ``lstm-embed`` console script pip writes (``main()`` from a
    file in a bin/ folder, so that sys.path[0] is that folder and not the current one)."""
    script = tmp_path / "bin" / "lstm-embed"
    script.parent.mkdir(exist_ok=True)
    script.write_text("import sys\nfrom lstm_embed.cli import main\nsys.exit(main())\n")
    proc = subprocess.run([sys.executable, str(script), *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env=env or ENV)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A directory of checkpoints: a training checkpoint (LSTM + head + other layers + optimizer), a
    twin with other weights, a bidirectional state_dict, a GRU, two LSTMs, a non-torch file, and a
    whole module pickled from code that is not importable."""
    d = tmp_path_factory.mktemp("cli")
    model = seeded(Tagger, num_layers=2)
    state = dict(model.state_dict(), **{f"extra.{k}": v for k, v in nn.Linear(3, 3).state_dict().items()})
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(4, 5)).sum().backward()
    opt.step()
    torch.save({"epoch": 1, "model_state": state, "optimizer": opt.state_dict()}, d / "ckpt.pt")
    torch.save(seeded(Tagger, seed=9, num_layers=2).state_dict(), d / "twin.pt")
    torch.save(seeded(Tagger, bidirectional=True).state_dict(), d / "bidi.pt")
    torch.save(nn.GRU(5, 8).state_dict(), d / "gru.pt")
    torch.save({"a": nn.LSTM(5, 8).state_dict(), "b": nn.LSTM(5, 8).state_dict()}, d / "two.pt")
    (d / "notes.txt").write_text("not a checkpoint\n")
    (d / "code").mkdir()
    (d / "code" / "train_script_y2.py").write_text(textwrap.dedent("""
        import torch
        from torch import nn
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = nn.LSTM(3, 4)
        torch.save(Net(), "pickled.pt")
    """))
    subprocess.run([sys.executable, "code/train_script_y2.py"], cwd=d, check=True)
    # a whole module whose class lives in the training code's own module (netdef.py next to train.py)
    (d / "proj").mkdir()
    (d / "proj" / "netdef.py").write_text(textwrap.dedent("""
        from torch import nn
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = nn.LSTM(3, 4)
                self.fc = nn.Linear(4, 2)
    """))
    (d / "proj" / "train.py").write_text("import torch\nfrom netdef import Net\ntorch.save(Net(), 'whole.pt')\n")
    subprocess.run([sys.executable, "train.py"], cwd=d / "proj", check=True)
    assert cli("convert", "ckpt.pt", "-o", "model.lstm", cwd=d).returncode == 0
    return d


def test_convert_prints_notes_and_warnings(files):
    proc = cli("convert", "ckpt.pt", "-o", "again.lstm", cwd=files)
    assert proc.returncode == 0
    assert "note: LSTM 'model_state.lstm': nn.LSTM input 5, hidden 16, 2 layers" in proc.stdout
    assert "note: head 'model_state.fc': Linear 16 -> 3: the only Linear layer" in proc.stdout
    assert "note: ignored, outside the model's state_dict: optimizer" in proc.stdout
    assert "wrote again.lstm: float32, input 5, hidden 16, 2 layer(s) x 1 direction(s), head 3" in proc.stdout
    assert "warning: not converted, other layers of the model: 'model_state.extra' (2 tensors)" in proc.stderr
    assert (files / "again.lstm").read_bytes() == (files / "model.lstm").read_bytes()


def test_convert_choices_are_usage_errors(files):
    proc = cli("convert", "two.pt", "-o", "x.lstm", cwd=files)
    assert proc.returncode == 2
    assert "lstm-embed: error: two.pt holds 2 LSTMs; choose one with --lstm PREFIX" in proc.stderr
    assert "  'a': nn.LSTM input 5, hidden 8, 1 layer\n  'b': nn.LSTM" in proc.stderr
    assert not (files / "x.lstm").exists()
    proc = cli("convert", "two.pt", "-o", "x.lstm", "--lstm", "b", "--head-activation", "tanh", cwd=files)
    assert proc.returncode == 2 and "'tanh' needs a head" in proc.stderr
    assert cli("convert", "two.pt", "-o", "x.lstm", "--lstm", "b", cwd=files).returncode == 0


@pytest.mark.parametrize("src, out, message", [
    ("missing.pt", "failed.lstm", "lstm-embed: error: file not found: missing.pt (check the path)"),
    ("ckpt.pt", "no/such/dir/x.lstm", "lstm-embed: error: cannot write no/such/dir/x.lstm: the output folder "),
    ("notes.txt", "failed.lstm", "lstm-embed: error: notes.txt is not a PyTorch file: expected the output of "
                                 "torch.save"),
    ("model.lstm", "failed.lstm", "model.lstm is already an lstm_embed model file, not a PyTorch checkpoint; "
                                  "inspect it with `lstm-embed info model.lstm`"),
    ("gru.pt", "failed.lstm", "lstm-embed: error: GRU is not supported: gru.pt holds no LSTM"),
    ("pickled.pt", "failed.lstm", "lstm-embed: error: pickled.pt holds a pickled object whose class cannot be "
                                  "imported here"),
])
def test_convert_failures(files, src, out, message):
    proc = cli("convert", src, "-o", out, cwd=files)
    assert (proc.returncode, proc.stdout) == (1, "")
    assert message in proc.stderr
    assert not (files / out).exists()


def test_output_folder_must_exist(files):
    proc = cli("convert", "ckpt.pt", "-o", "/missing/dir/x.lstm", cwd=files)
    assert proc.returncode == 1
    assert "the output folder /missing/dir does not exist (create it first)" in proc.stderr
    assert "file not found" not in proc.stderr


def test_whole_module_converts_in_the_training_code_folder(files, tmp_path):
    """The console script, like `python -m`, imports the pickled module's classes from the current folder."""
    for run in (console, cli):
        out = tmp_path / f"whole_{run.__name__}.lstm"
        proc = run("convert", "whole.pt", "-o", out, cwd=files / "proj", **({"tmp_path": tmp_path}
                                                                             if run is console else {}))
        assert proc.returncode == 0, proc.stderr
        assert lstm_embed.Model.load(out).head_size == 2
    proc = console("convert", "proj/whole.pt", "-o", "x.lstm", cwd=files, tmp_path=tmp_path)
    assert proc.returncode == 1
    assert "module 'netdef' (class netdef.Net) is not importable from the current folder" in proc.stderr
    assert "run lstm-embed from the training code's folder" in proc.stderr and "PYTHONPATH=" in proc.stderr
    env = dict(ENV, PYTHONPATH=ENV["PYTHONPATH"] + os.pathsep + str(files / "proj"))
    assert console("convert", "proj/whole.pt", "-o", "x.lstm", cwd=files, tmp_path=tmp_path,
                   env=env).returncode == 0


def test_version(files, tmp_path):
    want = f"lstm-embed {lstm_embed.__version__} (C library {lstm_embed.c_version()})"
    for proc in (cli("--version", cwd=files), console("--version", cwd=files, tmp_path=tmp_path)):
        assert (proc.returncode, proc.stdout.strip()) == (0, want)


def test_pickled_module_message_explains_weights_only(files):
    err = cli("convert", "pickled.pt", "-o", "failed.lstm", cwd=files).stderr
    assert "refers to" in err and "__main__.Net" in err and "weights_only" in err
    assert "save the weights only with torch.save(model.state_dict(), PATH)" in err


def test_usage_errors(files):
    assert cli(cwd=files).returncode == 2
    proc = cli("convert", "ckpt.pt", "-o", "x.lstm", "--head-activation", "gelu", cwd=files)
    assert proc.returncode == 2 and "invalid choice: 'gelu'" in proc.stderr
    proc = cli("verify", "model.lstm", "--against", "ckpt.pt", "--steps", "0", cwd=files)
    assert proc.returncode == 2 and "--steps >= 1" in proc.stderr


def test_info(files):
    proc = cli("info", "model.lstm", cwd=files)
    assert proc.returncode == 0, proc.stderr
    model = lstm_embed.Model.load(files / "model.lstm")
    for line in ("model.lstm: lstm_embed model", "format version  2", "checksum        OK",
                 "dtype           float32 (per layer: float32, float32)", "input size      5",
                 "hidden size     16", "proj size       none", "layers          2", "directions      1",
                 "head            3 (none)", "output size     3", f"parameters      {model.param_count:,}",
                 f"file size       {model.file_size:,} bytes", f"state/stream    {model.state_size:,} bytes; compact {model.compact_state_size:,} bytes",
                 "use             step and run"):
        assert f"  {line}" in proc.stdout or proc.stdout.startswith(line)
    info = json.loads(cli("info", "model.lstm", "--json", cwd=files).stdout)
    assert info["ok"] and info["checksum"] == "OK" and info["layer_dtypes"] == ["float32", "float32"]
    assert (info["param_count"], info["state_size"], info["file_size"]) == (model.param_count, model.state_size,
                                                                            model.file_size)
    assert info["compact_state_size"] == model.compact_state_size == 32 + 4 * 2 * 2 * 16  # h, c of 2 layers


def test_info_on_damaged_files(files):
    data = bytearray((files / "model.lstm").read_bytes())
    data[-70] ^= 0x10  # a bit flip in the weights
    (files / "flipped.lstm").write_bytes(bytes(data))
    (files / "short.lstm").write_bytes(bytes(data[:100]))
    proc = cli("info", "flipped.lstm", cwd=files)
    assert proc.returncode == 1
    assert proc.stdout.startswith(f"flipped.lstm: DAMAGED ({len(data):,} bytes); the header says:")
    assert "magic           b'LSTMEMB\\x00' (OK)" in proc.stdout and "input_size      5" in proc.stdout
    assert "checksum        MISMATCH: stored 0x" in proc.stdout
    assert "lstm-embed: error: flipped.lstm: cannot open model: " in proc.stderr and "[status 6]" in proc.stderr
    info = json.loads(cli("info", "short.lstm", "--json", cwd=files).stdout)
    assert not info["ok"] and info["bytes"] == 100 and "truncated" in info["error"].lower()
    assert info["checksum"].startswith("cannot check: the file has 100 bytes")
    proc = cli("info", "notes.txt", cwd=files)
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr.strip() == (f"lstm-embed: error: notes.txt: not an lstm_embed model file (it starts with "
                                   f"b'not a ch', not the magic {FORMAT['MAGIC']!r})")


@pytest.mark.parametrize("src", ["ckpt.pt", "pickled.pt"])
def test_info_on_a_pytorch_file(files, src):
    proc = cli("info", src, cwd=files)
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr.strip() == (f"lstm-embed: error: {src}: not an lstm_embed model file (it looks like a "
                                   "PyTorch checkpoint: convert it with `lstm-embed convert`)")
    assert "DAMAGED" not in proc.stderr
    info = json.loads(cli("info", src, "--json", cwd=files).stdout)
    assert not info["ok"] and info["not_model"] and "header" not in info
    proc = cli("verify", src, "--against", src, cwd=files)
    assert proc.returncode == 1 and "not an lstm_embed model file (it looks like a PyTorch" in proc.stderr


def test_verify_passes(files):
    proc = cli("verify", "model.lstm", "--against", "ckpt.pt", "--steps", "300", cwd=files)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "verify model.lstm (float32) against ckpt.pt (LSTM 'model_state.lstm', head 'model_state.fc')" in out
    assert "data: 300 steps of N(0,1) data, seed 0, step by step, state carried" in out
    assert "reference: PyTorch float64" in out
    assert "  output    ours max   ours mean   torch max  torch mean" in out and "      270-299" in out
    assert "ours vs float64:  max abs error" in out and "torch vs float64: max abs error" in out
    assert "(float32: 4 x PyTorch float32's error + 1e-06 x max|output|): PASS" in out
    report = json.loads(cli("verify", "model.lstm", "--against", "ckpt.pt", "--steps", "200", "--json",
                            cwd=files).stdout)
    assert report["passed"] and report["steps"] == 200 and report["mode"] == "step"
    assert len(report["per_output"]) == 3 and len(report["windows"]) == 10
    assert report["windows"][-1] == {**report["windows"][-1], "start": 180, "stop": 200}
    assert 0 < report["max_abs_error"] <= report["limit"] and report["tolerance"] is None
    assert 0 < report["torch_fp32_max_abs_error"] and report["int8_weights_max_abs_error"] is None
    assert report["limit"] == pytest.approx(4 * report["torch_fp32_max_abs_error"] + 1e-6 * report["max_abs_output"])
    assert set(report["per_output"][0]) == {"output", "max", "mean", "torch_fp32_max", "torch_fp32_mean"}
    proc = cli("verify", "model.lstm", "--against", "ckpt.pt", "--steps", "50", "--tolerance", "0", cwd=files)
    assert proc.returncode == 1 and "limit 0.000e+00 (--tolerance 0 (max abs error)): FAIL" in proc.stdout


def test_verify_fails_against_other_weights(files):
    proc = cli("verify", "model.lstm", "--against", "twin.pt", "--steps", "50", cwd=files)
    assert proc.returncode == 1
    assert ": FAIL" in proc.stdout and "lstm-embed: error: max abs error" in proc.stderr
    proc = cli("verify", "model.lstm", "--against", "bidi.pt", cwd=files)
    assert proc.returncode == 1 and "differ" in proc.stderr and "directions 1" in proc.stderr


def test_verify_bidirectional_with_data(files):
    assert cli("convert", "bidi.pt", "-o", "bidi.lstm", cwd=files).returncode == 0
    np.save(files / "xs.npy", np.random.default_rng(1).standard_normal((40, 5)))
    proc = cli("verify", "bidi.lstm", "--against", "bidi.pt", "--data", "xs.npy", "--json", cwd=files)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["steps"], report["mode"], report["data"]) == (40, "run", "xs.npy")
    np.save(files / "bad.npy", np.zeros((4, 2)))
    proc = cli("verify", "bidi.lstm", "--against", "bidi.pt", "--data", "bad.npy", cwd=files)
    assert proc.returncode == 1 and "must hold a real (T, 5) or (N, T, 5) array, got float64 (4, 2)" in proc.stderr
    np.save(files / "xs3.npy", np.random.default_rng(2).standard_normal((3, 20, 5)).astype(np.float32))
    for model, src in (("bidi.lstm", "bidi.pt"), ("model.lstm", "ckpt.pt")):
        proc = cli("verify", model, "--against", src, "--data", "xs3.npy", "--json", cwd=files)
        assert proc.returncode == 0, proc.stderr
        report = json.loads(proc.stdout)
        assert (report["sequences"], report["steps"]) == (3, 20)
    proc = cli("verify", "model.lstm", "--against", "ckpt.pt", "--data", "xs3.npy", cwd=files)
    assert "data: 20 steps x 3 sequences of xs3.npy (3 sequences, each on a fresh stream)" in proc.stdout


def test_convert_int8_with_calibration_and_tolerance(files):
    np.save(files / "calib.npy", np.random.default_rng(0).normal(size=(2, 50, 5)).astype(np.float32))
    proc = cli("convert", "ckpt.pt", "-o", "q.lstm", "--dtype", "int8", "--calibration", "calib.npy",
               "--tolerance", "1.0", cwd=files)
    assert proc.returncode == 0, proc.stderr
    assert "calibration on 100 steps" in proc.stdout and "chosen: layer 0: int8-dynamic" in proc.stdout
    assert lstm_embed.Model.load(files / "q.lstm").layer_dtypes == ("int8-dynamic", "int8-dynamic")
    proc = cli("convert", "ckpt.pt", "-o", "q2.lstm", "--dtype", "int8", cwd=files)
    assert proc.returncode == 0 and "without calibration data" in proc.stdout
    proc = cli("info", "q2.lstm", cwd=files)
    assert "int8 (per layer: int8, int8)" in proc.stdout
    proc = cli("convert", "ckpt.pt", "-o", "q3.lstm", "--tolerance", "0.1", cwd=files)
    assert proc.returncode == 1 and "only used for quantized dtypes" in proc.stderr
