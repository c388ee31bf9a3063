"""step_many with enough streams for the batched products' every path (issues 11, 12): 37 streams (on
amx_int8: two whole tiles of 16 vectors and a partial one of 5, past the thresholds below which it uses
the AVX-512 kernels: gemm_s8 from 2 vectors, gemm_s16 from 5), on every kernel table this CPU runs, give
the reference's bits and each stream's own step-by-step bits, for int8-dynamic and int8-a16 layers with
projection and head; the input width 20 leaves a K tail (5 column groups)."""
import numpy as np
import pytest
import torch

import lstm_embed
from _isas import open_all_isas

STREAMS = 37
STEPS = 12


@pytest.mark.parametrize("dtype", ["int8-dynamic", "int8-a16"])
def test_many_streams_every_isa_same_bits(dtype):
    torch.manual_seed(11)
    lstm = torch.nn.LSTM(20, 40, num_layers=2, proj_size=12)
    head = torch.nn.Linear(12, 3)
    data = lstm_embed.convert_torch(lstm, head=head, head_activation="tanh", dtype=dtype)
    rng = np.random.default_rng(11)
    xs = (rng.standard_normal((STEPS, STREAMS, 20)) * rng.uniform(0.1, 4.0, (1, STREAMS, 1))).astype(np.float32)
    models = open_all_isas(data)
    outs = {}
    for isa, model in models.items():
        streams = [model.stream(compact=True) for _ in range(STREAMS)]
        outs[isa] = np.stack([model.step_many(streams, xs[t]) for t in range(STEPS)])
    ref = models["reference"]
    alone = np.stack([ref.stream().run(xs[:, i]) for i in range(STREAMS)], axis=1)
    assert np.array_equal(outs["reference"], alone), "reference step_many differs from each stream alone"
    for isa, got in outs.items():
        assert np.array_equal(got, outs["reference"]), (
            f"{dtype} step_many on {isa} differs from reference by {np.abs(got - outs['reference']).max():.2e}")
    print(f"{dtype}: tables compared: {', '.join(sorted(outs))}")
