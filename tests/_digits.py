"""The digits task of the trained-model tests: scikit-learn's 8x8 handwritten digits, each image read row
by row (8 steps of 8 pixels), split 75 / 25 with fixed seeds, and the training loop."""
import numpy as np
import torch
from torch import nn


def digits_split():
    """(x_train, x_test, y_train, y_test): images scaled to [0, 1] as float32, stratified, random_state 0."""
    from sklearn import datasets, model_selection

    digits = datasets.load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    return model_selection.train_test_split(images, digits.target, test_size=0.25, random_state=0,
                                            stratify=digits.target)


def train(model: nn.Module, optimizer, x_train: np.ndarray, y_train: np.ndarray, epochs: int) -> None:
    """Cross-entropy on the last step's logits, batches of 64 in a new random order (torch's RNG) each
    epoch; leaves the model in eval mode."""
    xs, ys = torch.from_numpy(x_train), torch.from_numpy(y_train)
    for _ in range(epochs):
        for batch in torch.randperm(len(xs)).split(64):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(xs[batch])[:, -1], ys[batch]).backward()
            optimizer.step()
    model.eval()
