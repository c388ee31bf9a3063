"""step_many(threads=k) (issue 12): the streams split into k groups stepped on k threads give the same bits
as one call; bad input anywhere changes no stream; a bad threads value is refused."""
import numpy as np
import pytest
import torch

import lstm_embed
from lstm_embed import InvalidArgumentError, Model, NonFiniteInputError


@pytest.fixture(scope="module", params=["float32", "int8", "int8-dynamic"])
def model(request):
    torch.manual_seed(3)
    return Model.from_bytes(lstm_embed.convert_torch(torch.nn.LSTM(12, 33, num_layers=2), dtype=request.param))


@pytest.mark.parametrize("threads,n", [(2, 64), (3, 50), (4, 5), (8, 3)])
def test_threads_give_the_same_bits(model, threads, n):
    rng = np.random.default_rng(n)
    xs = rng.standard_normal((6, n, model.input_size)).astype(np.float32)
    one = [model.stream(compact=i % 3 == 0) for i in range(n)]
    many = [model.stream(compact=i % 2 == 0) for i in range(n)]
    for t in range(6):
        np.testing.assert_array_equal(model.step_many(many, xs[t], threads=threads), model.step_many(one, xs[t]))
    assert [s.snapshot() for s in many] == [s.snapshot() for s in one]


def test_bad_input_in_any_group_changes_no_stream(model):
    streams = [model.stream() for _ in range(40)]
    xs = np.ones((40, model.input_size), np.float32)
    model.step_many(streams, xs, threads=2)
    before = [s.snapshot() for s in streams]
    xs[37, 1] = np.nan  # in the second group
    with pytest.raises(NonFiniteInputError):
        model.step_many(streams, xs, threads=2)
    xs[37, 1] = 2.0 ** 70
    with pytest.raises(lstm_embed.InputRangeError):
        model.step_many(streams, xs, threads=2)
    assert [s.snapshot() for s in streams] == before
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(InvalidArgumentError):
            model.step_many(streams, xs, threads=bad)
