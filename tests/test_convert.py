"""lstm_embed.convert: reading PyTorch parameter names, the checks on them, and the dtype/activation
arguments. (Numerical parity of every LSTM variant is in test_parity.py; checkpoint files in
test_checkpoint.py.)"""
import re

import numpy as np
import pytest
import torch
from _convert_helpers import Tagger, assert_parity, seeded
from torch import nn

import lstm_embed
from lstm_embed.convert import DTYPES, activation_name, recurrent_kind, spec_from_state_dict, spec_to_bytes
from lstm_embed.errors import ConversionError

torch.set_num_threads(1)


def _shapes(module: nn.Module) -> dict:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


@pytest.mark.parametrize("module, kind", [
    (nn.LSTM(3, 4, num_layers=2), "LSTM"), (nn.LSTM(3, 4, proj_size=2), "LSTM"),
    (nn.LSTM(3, 4, bias=False, bidirectional=True), "LSTM"), (nn.LSTMCell(3, 4), "LSTMCell"),
    (nn.GRU(3, 4), "GRU"), (nn.GRUCell(3, 4), "GRUCell"), (nn.RNN(3, 4), "RNN"), (nn.RNNCell(3, 4), "RNNCell"),
    (nn.Linear(3, 4), None), (nn.LayerNorm(4), None),
])
def test_recurrent_kind(module, kind):
    assert recurrent_kind(_shapes(module)) == kind


def test_recurrent_kind_of_gate_counts_that_fit_nothing():
    assert recurrent_kind({"weight_ih_l0": (8, 3), "weight_hh_l0": (8, 4)}) == "unknown recurrent"
    with pytest.raises(ConversionError, match=r"fits no LSTM \(expected \[4\*hidden, hidden\]\)"):
        spec_from_state_dict({"weight_ih_l0": np.zeros((8, 3)), "weight_hh_l0": np.zeros((8, 4))})


@pytest.mark.parametrize("module, kind", [(nn.GRU(3, 4), "GRU"), (nn.GRUCell(3, 4), "GRUCell"),
                                          (nn.RNN(3, 4), "RNN")])
def test_other_recurrent_state_dicts_are_refused_by_name(module, kind):
    """A GRU's weight_ih_l0 has 3H rows, a multiple of 4 for H = 4: without the gate check it would be
    read as an LSTM of hidden size 3 and fail on a confusing shape message."""
    with pytest.raises(ConversionError, match=f"^{kind} is not supported: .*torch.nn.{kind}"):
        spec_from_state_dict(module.state_dict())


def test_convert_torch_refuses_other_modules():
    with pytest.raises(ConversionError, match="expected torch.nn.LSTM or torch.nn.LSTMCell, got GRU"):
        lstm_embed.convert_torch(nn.GRU(3, 4))
    with pytest.raises(ConversionError, match="head must be a torch.nn.Linear, got Conv1d"):
        lstm_embed.convert_torch(nn.LSTM(3, 4), head=nn.Conv1d(4, 2, 1))


def test_missing_layer_and_bad_projection():
    state = nn.LSTM(3, 4, num_layers=3).state_dict()
    del state["weight_ih_l1"]
    with pytest.raises(ConversionError, match="missing tensor 'weight_ih_l1'"):
        spec_from_state_dict(state)
    state = nn.LSTM(3, 4, proj_size=2).state_dict()
    state["weight_hr_l0"] = torch.zeros(4, 4)
    with pytest.raises(ConversionError, match="projection size 4 must be smaller than hidden size 4"):
        spec_from_state_dict(state)


def test_integer_and_non_finite_tensors():
    state = nn.LSTM(3, 4).state_dict()
    with pytest.raises(ConversionError, match="weight_hh_l0 must hold floating-point weights, got dtype int64"):
        spec_from_state_dict(dict(state, weight_hh_l0=torch.zeros(16, 4, dtype=torch.long)))
    bad = state["weight_ih_l0"].clone()
    bad[3, 1] = float("inf")
    with pytest.raises(ConversionError, match="weight_ih_l0 holds NaN or infinite values"):
        spec_from_state_dict(dict(state, weight_ih_l0=bad))


def test_dtype_is_checked_in_one_place():
    lstm = nn.LSTM(3, 4)
    with pytest.raises(ConversionError, match=re.escape(f"dtype must be one of {DTYPES!r}, got 'float7'")):
        lstm_embed.convert_torch(lstm, dtype="float7")
    with pytest.raises(ConversionError, match="dtype must be one of"):
        spec_to_bytes(spec_from_state_dict(lstm.state_dict()), dtype="float7")
    with pytest.raises(ConversionError, match="calibration data and tolerance are only used for quantized dtypes"):
        lstm_embed.convert_torch(lstm, calibration=np.zeros((4, 3)))
    assert spec_to_bytes(spec_from_state_dict(lstm.state_dict())) == lstm_embed.convert_torch(lstm)


@pytest.mark.parametrize("given, name", [
    (None, "none"), ("SoftMax", "softmax"), (nn.Identity(), "none"), (nn.Sigmoid(), "sigmoid"),
    (nn.Tanh(), "tanh"), (nn.ReLU(), "relu"), (nn.Softmax(dim=-1), "softmax"), (nn.Softmax(dim=1), "softmax"),
])
def test_activation_names(given, name):
    assert activation_name(given) == name


def test_activations_that_cannot_be_converted():
    with pytest.raises(ConversionError, match="only a softmax over the output features"):
        activation_name(nn.Softmax(dim=0))
    with pytest.raises(ConversionError, match="head activation must be one of"):
        activation_name(nn.GELU())
    with pytest.raises(ConversionError, match="head activation must be one of"):
        activation_name("swish")


def test_batch_first_and_dropout_do_not_change_the_weights():
    """Training-time options: batch_first is a layout, dropout is off at inference."""
    model = seeded(Tagger, num_layers=2, batch_first=True, dropout=0.3)
    data = lstm_embed.convert_torch(model.lstm, head=model.fc, head_activation=nn.Softmax(dim=-1))

    def forward(xs):
        return torch.softmax(model.fc(model.lstm(xs[None])[0][0]), dim=-1)

    assert_parity(data, forward, 5)
