"""load_checkpoint: every checkpoint form converts with parity against the original module, and every
user error gets a message that says what to do."""
import sys
import textwrap
import zipfile

import numpy as np
import pytest
import torch
from _convert_helpers import Seq2Seq, Tagger, assert_parity, inputs, seeded
from torch import nn

import lstm_embed
from lstm_embed.checkpoint import ChoiceError, find_lstm, load_checkpoint
from lstm_embed.errors import ConversionError, UnsupportedError

torch.set_num_threads(1)


@pytest.fixture
def tagger():
    return seeded(Tagger, num_layers=2)


def _save(obj, path, **kwargs):
    torch.save(obj, path, **kwargs)
    return path


# --- each checkpoint form ---------------------------------------------------------------------------------

def test_state_dict(tmp_path, tagger):
    ckpt = load_checkpoint(_save(tagger.state_dict(), tmp_path / "m.pt"))
    assert (ckpt.lstm_prefix, ckpt.head_prefix, ckpt.form) == ("lstm", "fc", "state_dict")
    assert any("the only Linear layer" in n for n in ckpt.notes)
    assert ckpt.warnings == []
    assert_parity(ckpt.convert(), tagger, 5)


def test_whole_pickled_module(tmp_path, tagger):
    path = _save(tagger, tmp_path / "m.pt")
    ckpt = load_checkpoint(path)
    assert ckpt.form == "whole pickled module (Tagger)"
    assert any("full unpickling" in n and "Tagger" in n for n in ckpt.notes)
    assert_parity(ckpt.convert(), tagger, 5)


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_torchscript(tmp_path, tagger):
    path = tmp_path / "m.ts"
    torch.jit.save(torch.jit.script(tagger), path)
    ckpt = load_checkpoint(path)
    assert ckpt.form == "TorchScript module"
    assert_parity(ckpt.convert(), torch.jit.load(path), 5)


@pytest.mark.parametrize("key", ["model_state", "state_dict", "model", "model_state_dict", "net"])
def test_training_checkpoint_dict(tmp_path, tagger, key):
    """A state_dict nested in a training checkpoint with optimizer state (real Adam moments)."""
    opt = torch.optim.Adam(tagger.parameters())
    tagger(torch.randn(7, 5)).sum().backward()
    opt.step()
    tagger.zero_grad()
    ckpt = load_checkpoint(_save({"epoch": 3, key: tagger.state_dict(), "optimizer": opt.state_dict(),
                                  "config": {"hidden": 16}}, tmp_path / "ckpt.pt"))
    assert (ckpt.lstm_prefix, ckpt.head_prefix) == (f"{key}.lstm", f"{key}.fc")
    assert "ignored, outside the model's state_dict: optimizer" in ckpt.notes
    assert_parity(ckpt.convert(), tagger, 5)


def test_prefixed_keys_of_a_bigger_model(tmp_path):
    model = seeded(Seq2Seq)
    ckpt = load_checkpoint(_save({"model": model.state_dict()}, tmp_path / "big.pt"))
    assert (ckpt.lstm_prefix, ckpt.head_prefix) == ("model.encoder.lstm", "model.decoder.fc")
    [warning] = ckpt.warnings
    assert "'model.encoder.norm' (2 tensors)" in warning and "'model.decoder.aux' (2 tensors)" in warning
    assert_parity(ckpt.convert(), model, 4)


def test_separate_state_dicts_and_lightning_layout(tmp_path, tagger):
    """{"lstm": sd, "head": sd}; and Lightning's "state_dict" with "model." keys + optimizer_states list."""
    opt = torch.optim.SGD(tagger.parameters(), lr=0.1, momentum=0.9)
    tagger(torch.randn(3, 5)).sum().backward()
    opt.step()
    separate = load_checkpoint(_save({"lstm": tagger.lstm.state_dict(), "head": tagger.fc.state_dict()},
                                     tmp_path / "a.pt"))
    assert (separate.lstm_prefix, separate.head_prefix) == ("lstm", "head")
    lightning = {"state_dict": {f"model.{k}": v for k, v in tagger.state_dict().items()},
                 "optimizer_states": [opt.state_dict()], "global_step": 1}
    ckpt = load_checkpoint(_save(lightning, tmp_path / "b.ckpt"))
    assert ckpt.lstm_prefix == "state_dict.model.lstm"
    assert separate.convert() == ckpt.convert()
    assert_parity(ckpt.convert(), tagger, 5)


@pytest.mark.parametrize("wrapper", ["module", "_orig_mod"])  # nn.DataParallel, torch.compile
def test_wrapper_prefix_and_legacy_format(tmp_path, tagger, wrapper):
    state = {f"{wrapper}.{k}": v for k, v in tagger.state_dict().items()}
    ckpt = load_checkpoint(_save(state, tmp_path / "dp.pt", _use_new_zipfile_serialization=False))
    assert ckpt.lstm_prefix == f"{wrapper}.lstm"
    assert_parity(ckpt.convert(), tagger, 5)


def test_bidirectional_projection_runs_whole_sequences(tmp_path):
    model = seeded(Tagger, num_layers=2, bidirectional=True, proj_size=6)
    data = load_checkpoint(_save(model.state_dict(), tmp_path / "bi.pt")).convert()
    xs = inputs(5)
    converted = lstm_embed.Model.from_bytes(data)
    with torch.no_grad():
        want = model(torch.from_numpy(xs)).numpy()
    np.testing.assert_allclose(converted.stream().run(xs), want, rtol=0, atol=1e-5)
    with pytest.raises(UnsupportedError, match=r"bidirectional.*(whole sequence|run)"):
        converted.stream().step(xs[0])


def test_lstm_cell_and_explicit_head_without_bias(tmp_path):
    torch.manual_seed(4)
    cell, head = nn.LSTMCell(3, 10), nn.Linear(10, 2, bias=False)
    ckpt = load_checkpoint(_save({"cell": cell.state_dict(), "out": head.state_dict()}, tmp_path / "c.pt"))
    assert ckpt.head_prefix is None  # a Linear without bias is no automatic candidate
    assert any(n.startswith("no head") for n in ckpt.notes)
    ckpt = load_checkpoint(tmp_path / "c.pt", head="out")

    def forward(xs):
        state, rows = None, []
        for x in xs:
            state = cell(x[None], state)
            rows.append(torch.sigmoid(head(state[0][0])))
        return torch.stack(rows)

    assert_parity(ckpt.convert(head_activation="sigmoid"), forward, 3)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_float_dtypes(tmp_path, tagger, dtype):
    stored = tagger.to(dtype)
    ckpt = load_checkpoint(_save(stored.state_dict(), tmp_path / "h.pt"))
    assert_parity(ckpt.convert(), stored.float(), 5)


def test_torch_modules_rebuild_the_same_network(tagger):
    lstm, head = find_lstm(tagger.state_dict()).torch_modules()
    xs = torch.from_numpy(inputs(5, 20))
    with torch.no_grad():
        torch.testing.assert_close(head(lstm(xs[:, None])[0][:, 0]), tagger(xs), rtol=0, atol=0)


# --- choices ----------------------------------------------------------------------------------------------

def test_two_lstms_are_listed_and_chosen_by_prefix():
    a, b = seeded(Tagger, 1), seeded(Tagger, 2)
    state = {"model": a.state_dict(), "ema": {"model": b.state_dict()}}
    with pytest.raises(ChoiceError, match="holds 2 LSTMs; choose one with --lstm") as e:
        find_lstm(state)
    assert "'model.lstm': nn.LSTM input 5, hidden 16, 1 layer" in str(e.value)
    assert "'ema.model.lstm'" in str(e.value)
    with pytest.raises(ChoiceError, match="matches several modules"):
        find_lstm(state, lstm="lstm", head="none")
    ckpt = find_lstm(state, lstm="ema.model.lstm", head="ema.model.fc")
    assert "ignored, outside the model's state_dict: model" in ckpt.notes
    assert_parity(ckpt.convert(), b, 5)
    assert find_lstm(state, lstm="model.lstm", head="model.fc").convert() != ckpt.convert()


def test_several_heads_are_listed_and_chosen():
    torch.manual_seed(0)
    state = {"lstm": nn.LSTM(3, 4).state_dict(), "logits": nn.Linear(4, 5).state_dict(),
             "value": nn.Linear(4, 1).state_dict(), "other": nn.Linear(7, 4).state_dict()}
    with pytest.raises(ChoiceError, match="2 Linear layers that take the LSTM's output width 4") as e:
        find_lstm(state)
    assert "'logits': Linear 4 -> 5" in str(e.value) and "'value': Linear 4 -> 1" in str(e.value)
    assert "'other'" not in str(e.value)
    assert lstm_embed.Model.from_bytes(find_lstm(state, head="value").convert()).output_size == 1
    assert lstm_embed.Model.from_bytes(find_lstm(state, head="none").convert()).output_size == 4


def test_prefix_that_matches_nothing_or_the_wrong_kind(tagger):
    with pytest.raises(ChoiceError, match=r"no module 'decoder' in .*the LSTMs there:\n  'lstm'"):
        find_lstm(tagger.state_dict(), lstm="decoder")
    with pytest.raises(ChoiceError, match="'fc' in the checkpoint is not an LSTM"):
        find_lstm(tagger.state_dict(), lstm="fc")
    with pytest.raises(ChoiceError, match=r"'lstm' is not an nn.Linear"):
        find_lstm({"lstm": tagger.lstm.state_dict(), "x": tagger.fc.state_dict()}, head="lstm")


def test_head_activation_without_a_head(tagger):
    with pytest.raises(ChoiceError, match="'softmax' needs a head.*--head PREFIX"):
        find_lstm(tagger.lstm.state_dict()).convert(head_activation="softmax")


# --- errors -----------------------------------------------------------------------------------------------

def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "nope.pt")


def test_files_that_are_not_torch_files(tmp_path):
    (tmp_path / "text.pt").write_text("epoch,loss\n1,0.3\n")
    np.save(tmp_path / "arr.npy", np.zeros(3))
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as z:
        z.writestr("readme.txt", "hello")
    for name in ("text.pt", "arr.npy"):
        with pytest.raises(ConversionError, match="is not a PyTorch file: expected the output of torch.save"):
            load_checkpoint(tmp_path / name)
    with pytest.raises(ConversionError, match="a zip archive but not a PyTorch file"):
        load_checkpoint(tmp_path / "other.zip")


def test_our_own_model_file(tmp_path, tagger):
    (tmp_path / "m.lstm").write_bytes(lstm_embed.convert_torch(tagger.lstm))
    with pytest.raises(ConversionError, match="already an lstm_embed model file.*lstm-embed info"):
        load_checkpoint(tmp_path / "m.lstm")


def test_no_lstm_inside(tmp_path):
    path = _save({"encoder": nn.Linear(3, 4).state_dict(), "epoch": 2}, tmp_path / "lin.pt")
    with pytest.raises(ConversionError, match=r"no LSTM inside .*weight_ih_l0.*2 tensors: encoder.weight"):
        load_checkpoint(path)
    with pytest.raises(ConversionError, match="the file holds no tensors"):
        find_lstm({"epoch": 2})


@pytest.mark.parametrize("module, kind", [(nn.GRU(3, 4, num_layers=2), "GRU"), (nn.GRUCell(3, 4), "GRUCell"),
                                          (nn.RNN(3, 4), "RNN")])
def test_other_recurrent_layers_are_named(module, kind):
    with pytest.raises(ConversionError, match=f"(?s)^{kind} is not supported: .*nn.{kind} input 3, hidden 4"):
        find_lstm({"rnn": module.state_dict()})
    with pytest.raises(ConversionError, match=f"^{kind} is not supported"):
        find_lstm({"rnn": module.state_dict()}, lstm="rnn")


def test_unknown_tensors_inside_the_lstm_prefix(tagger):
    state = dict(tagger.state_dict(), **{"lstm.ln_weight": torch.ones(64)})
    with pytest.raises(ConversionError, match=r"unsupported tensors in the LSTM weights: \['ln_weight'\]"):
        find_lstm(state)


def test_shape_mismatch_between_layers(tagger):
    state = dict(tagger.state_dict(), **{"lstm.weight_ih_l1": torch.zeros(64, 15)})
    with pytest.raises(ConversionError, match=r"weight_ih_l1 has shape \(64, 15\).*need \(64, 16\).*"
                                              "do not form one consistent model"):
        find_lstm(state)


def test_non_finite_weights(tagger):
    state = tagger.state_dict()
    state["fc.bias"][1] = float("nan")
    with pytest.raises(ConversionError, match="head bias holds NaN or infinite values"):
        find_lstm(state).convert()


def test_class_that_cannot_be_imported(tmp_path, monkeypatch):
    """A module pickled whole by training code that is not importable when converting."""
    (tmp_path / "train_code_x1.py").write_text(textwrap.dedent("""
        from torch import nn
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = nn.LSTM(3, 4)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    from train_code_x1 import Net

    path = _save(Net(), tmp_path / "net.pt")
    monkeypatch.delitem(sys.modules, "train_code_x1")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path)])
    with pytest.raises(ConversionError) as e:
        load_checkpoint(path)
    msg = str(e.value)
    assert "No module named 'train_code_x1'" in msg and "train_code_x1.Net" in msg
    assert "weights_only" in msg and "torch.save(model.state_dict(), PATH)" in msg


def test_weights_only_refuses_pickled_modules(tmp_path, tagger):
    with pytest.raises(ConversionError, match=r"cannot be read with weights_only=True: it refers to .*Tagger"):
        load_checkpoint(_save(tagger, tmp_path / "m.pt"), weights_only=True)
    assert load_checkpoint(_save(tagger.state_dict(), tmp_path / "s.pt"), weights_only=True).lstm_prefix == "lstm"

