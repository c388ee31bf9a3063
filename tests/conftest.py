"""Shared fixtures for the engine tests: seeded torch models and their converted lstm_embed Models."""
import numpy as np
import pytest
import torch

import lstm_embed

torch.set_num_threads(1)


def build_lstm(input_size, hidden_size, num_layers=1, *, proj_size=0, bidirectional=False, bias=True,
               seed=0, forget_bias=0.0, recurrent_scale=1.0):
    """A seeded ``nn.LSTM`` in eval mode. ``forget_bias`` is added to b_ih of the forget gate of every
    layer, which makes c accumulate (large |c|) when it is positive; every W_hh is multiplied by
    ``recurrent_scale``, which calms the feedback that would otherwise amplify float32 rounding."""
    torch.manual_seed(seed)
    lstm = torch.nn.LSTM(input_size, hidden_size, num_layers=num_layers, proj_size=proj_size,
                         bidirectional=bidirectional, bias=bias).eval()
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            if name.startswith("bias_ih"):
                p[hidden_size:2 * hidden_size] += forget_bias
            elif name.startswith("weight_hh"):
                p.mul_(recurrent_scale)
    return lstm


def build_head(in_features, out_features, seed=0):
    """A seeded ``nn.Linear`` head with weights large enough that activations see both signs and
    saturate."""
    torch.manual_seed(seed + 1000)
    head = torch.nn.Linear(in_features, out_features).eval()
    with torch.no_grad():
        head.weight.mul_(3.0)
        head.bias.mul_(3.0)
    return head


def to_model(lstm, head=None, activation=None):
    """Convert torch modules and open the result as an lstm_embed Model."""
    return lstm_embed.Model.from_bytes(lstm_embed.convert_torch(lstm, head=head, head_activation=activation))


@pytest.fixture
def rng():
    """A fresh seeded NumPy generator per test."""
    return np.random.default_rng(20240611)


@pytest.fixture(scope="session")
def model():
    """2 layers, input 5, hidden 12, projection 7, tanh head of 4: the workhorse of the stream tests."""
    lstm = build_lstm(5, 12, num_layers=2, proj_size=7, seed=1)
    return to_model(lstm, build_head(7, 4, seed=1), "tanh")


@pytest.fixture(scope="session")
def twin_model():
    """Same shape as ``model`` but other weights (another fingerprint)."""
    lstm = build_lstm(5, 12, num_layers=2, proj_size=7, seed=2)
    return to_model(lstm, build_head(7, 4, seed=2), "tanh")


@pytest.fixture(scope="session")
def bidir_model():
    """A 2-layer bidirectional model with a head."""
    lstm = build_lstm(3, 6, num_layers=2, bidirectional=True, seed=3)
    return to_model(lstm, build_head(12, 2, seed=3))


@pytest.fixture(scope="session")
def make_lstm():
    """The ``build_lstm`` factory, for tests that build their own shapes."""
    return build_lstm


@pytest.fixture(scope="session")
def make_head():
    """The ``build_head`` factory."""
    return build_head


@pytest.fixture(scope="session")
def convert():
    """The ``to_model`` helper: torch modules -> opened Model."""
    return to_model
