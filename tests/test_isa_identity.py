"""One dispatch, the same arithmetic everywhere (issue 10): on every kernel path this CPU can run, int8
and int8-dynamic models (with projection and head) give the reference path's bits, step by step, over
whole sequences and over many streams; fp32 layers (fused multiply-add in the SIMD kernels) agree within
float rounding. Also the regression test for quantising a vector of tiny values (issue 8)."""
import numpy as np
import pytest

import lstm_embed
from _isas import open_all_isas
from conftest import build_head, build_lstm


def outputs(model, xs):
    """(steps, run, step_many) outputs of one model on xs [T, I]: three ways to the same numbers."""
    stream = model.stream()
    steps = np.stack([stream.step(x) for x in xs])
    run = model.stream().run(xs)
    streams = [model.stream() for _ in range(3)]
    many = np.stack([model.step_many(streams, np.stack([x, x * 0.5, -x])) for x in xs])
    return steps, run, many


@pytest.fixture(scope="module")
def lstm_and_head():
    lstm = build_lstm(20, 48, num_layers=2, proj_size=24, seed=7, forget_bias=1.0)
    return lstm, build_head(24, 5, seed=7)


@pytest.mark.parametrize("dtype", ["int8", "int8-dynamic", "int8-a16"])
def test_int8_paths_are_bit_identical(lstm_and_head, dtype):
    lstm, head = lstm_and_head
    rng = np.random.default_rng(3)
    calibration = rng.standard_normal((2, 50, 20)).astype(np.float32)
    data = lstm_embed.convert_torch(lstm, head=head, head_activation="softmax", dtype=dtype, calibration=calibration)
    xs = rng.standard_normal((120, 20)).astype(np.float32) * 2
    models = open_all_isas(data)
    ref = outputs(models["reference"], xs)
    for isa, model in models.items():
        got = outputs(model, xs)
        for way, a, b in zip(("step", "run", "step_many"), got, ref):
            assert np.array_equal(a, b), f"{dtype} {way} on {isa} differs from reference by {np.abs(a - b).max()}"
    assert np.array_equal(ref[0], ref[2][:, 0]), "step_many's first stream differs from step"


def test_fp32_paths_agree_within_rounding(lstm_and_head):
    lstm, head = lstm_and_head
    data = lstm_embed.convert_torch(lstm, head=head, head_activation="tanh")
    xs = np.random.default_rng(4).standard_normal((200, 20)).astype(np.float32)
    models = open_all_isas(data)
    ref = models["reference"].stream().run(xs)
    outs = {}
    for isa, model in models.items():
        got = outs[isa] = model.stream().run(xs)
        np.testing.assert_allclose(got, ref, rtol=0, atol=2e-5, err_msg=f"fp32 on {isa}")
    # the "fma" tables sum in the same order and share the precise elementwise (one source): the same bits
    fma = [isa for isa in ("avx2", "avx2_vnni", "avx512_vnni", "amx_int8", "neon", "neon_dot") if isa in outs]
    for isa in fma[1:]:
        assert np.array_equal(outs[isa], outs[fma[0]]), f"fp32 on {isa} differs from {fma[0]}"


def test_tiny_vectors_quantise_to_zero(lstm_and_head):
    """Values below 2^-100 quantise to zero: before, 127 / max|v| overflowed to infinity and the float to
    int conversion was undefined (garbage int8 values, UBSan in the C core)."""
    lstm, _ = lstm_and_head
    data = lstm_embed.convert_torch(lstm, dtype="int8-dynamic")
    for isa, model in open_all_isas(data).items():
        zero = model.stream().run(np.zeros((5, 20), np.float32))
        for tiny in (1e-38, 3e-39, 1e-45, 7e-31):
            got = model.stream().run(np.full((5, 20), tiny, np.float32))
            assert np.array_equal(got, zero), f"{isa}: input {tiny} is not quantised to zero"
        small = model.stream().run(np.full((5, 20), 1e-30, np.float32))  # above 2^-100: quantised as usual
        assert np.isfinite(small).all()
