"""A model trained here on real data (scikit-learn's handwritten digits), saved as a training checkpoint,
converted through load_checkpoint: same outputs as PyTorch and the same held-out accuracy."""
import numpy as np
import pytest
import torch
from torch import nn

import lstm_embed
from lstm_embed.checkpoint import load_checkpoint

from _digits import digits_split, train

pytest.importorskip("sklearn")

torch.set_num_threads(1)


class DigitReader(nn.Module):
    """Reads an 8x8 image row by row (8 steps of 8 pixels); classifies from the last step."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(8, 32, batch_first=True)
        self.fc = nn.Linear(32, 10)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 8, 8) -> class logits at every step, (N, 8, 10)."""
        return self.fc(self.lstm(images)[0])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(checkpoint path, trained model, held-out images, labels, training images), fixed seeds, about 2 s
    of training."""
    x_train, x_test, y_train, y_test = digits_split()
    torch.manual_seed(0)
    model = DigitReader()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    epochs = 12
    train(model, opt, x_train, y_train, epochs)
    path = tmp_path_factory.mktemp("digits") / "digits.ckpt"
    torch.save({"epoch": epochs - 1, "model_state_dict": model.state_dict(), "optimizer_state_dict": opt.state_dict()},
               path)
    return path, model, x_test, y_test, x_train


def test_converted_digit_reader_matches_pytorch(trained):
    path, model, x_test, y_test, _ = trained
    ckpt = load_checkpoint(path)
    assert (ckpt.lstm_prefix, ckpt.head_prefix) == ("model_state_dict.lstm", "model_state_dict.fc")
    converted = lstm_embed.Model.from_bytes(ckpt.convert(head_activation="softmax"))
    with torch.no_grad():
        want = torch.softmax(model(torch.from_numpy(x_test)), dim=-1).numpy()

    streams = [converted.stream() for _ in x_test]  # one stream per image, all stepped together
    got = np.stack([converted.step_many(streams, x_test[:, t]) for t in range(8)], axis=1)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    for i in range(0, len(x_test), 97):  # whole-sequence path on a few images
        np.testing.assert_allclose(converted.stream().run(x_test[i]), want[i], rtol=0, atol=1e-5)

    ours, theirs = got[:, -1].argmax(1), want[:, -1].argmax(1)
    assert np.array_equal(ours, theirs)
    accuracy = float((ours == y_test).mean())
    assert accuracy == float((theirs == y_test).mean())
    assert accuracy > 0.9  # the model really learned the task


@pytest.mark.parametrize("dtype", ["int8", "int8-dynamic"])
def test_quantized_digit_reader_keeps_its_accuracy(trained, dtype):
    """Issue 4: on a model trained on real data, int8 accuracy within 0.5 percentage points of fp32,
    calibrated on training images (the held-out ones stay unseen)."""
    path, model, x_test, y_test, x_train = trained
    ckpt = load_checkpoint(path)
    fp32 = lstm_embed.Model.from_bytes(ckpt.convert(head_activation="softmax"))
    calibration = x_train[:64]
    quantized = lstm_embed.Model.from_bytes(ckpt.convert(head_activation="softmax", dtype=dtype,
                                                         calibration=calibration))
    assert quantized.dtype == dtype

    def accuracy(m: lstm_embed.Model) -> tuple[float, np.ndarray]:
        streams = [m.stream() for _ in x_test]
        probs = np.stack([m.step_many(streams, x_test[:, t]) for t in range(8)], axis=1)
        return float((probs[:, -1].argmax(1) == y_test).mean()), probs

    acc_fp32, p_fp32 = accuracy(fp32)
    acc_q, p_q = accuracy(quantized)
    print(f"{dtype}: accuracy {acc_q:.4f} vs fp32 {acc_fp32:.4f}, max prob difference "
          f"{np.abs(p_q - p_fp32).max():.2e}")
    assert abs(acc_q - acc_fp32) <= 0.005
