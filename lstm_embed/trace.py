"""Gate traces: what every layer of an LSTM did, step by step, and a picture of it.

``Stream.trace(xs)`` runs the C step itself (``lstm_step_trace``) and returns a :class:`Trace`: the gate
activations i, f, g, o, the cell state c and h of every layer after every step. The helpers here summarise
it (how often each gate is saturated, how large |c| gets) and compare it with a reference trace (the fp32
model, or any other model of the same shape) to show which layer and which gate a quantised model loses
accuracy in. :func:`plot_trace` draws all of it; it needs matplotlib (``pip install "lstm-embed[plot]"``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from lstm_embed.errors import LstmError, ShapeError

GATES = ("i", "f", "g", "o")  # input, forget, cell candidate (tanh), output
SATURATED = 0.02  # a sigmoid gate below 0.02 or above 0.98 (|g| above 0.98) counts as saturated


@dataclass(frozen=True)
class Trace:
    """What the layers did over T steps (L layers, H hidden units, Hr = proj_size or H).

    gates: (T, L, 4, H) activations in the order i, f, g, o (i, f, o in [0, 1]; g in [-1, 1]).
    c: (T, L, H) cell state after each step. h: (T, L, Hr) hidden state after each step.
    y: (T, output_size) the model's outputs (the same bits as ``Stream.step``).
    """

    gates: np.ndarray
    c: np.ndarray
    h: np.ndarray
    y: np.ndarray

    @property
    def steps(self) -> int:
        return self.gates.shape[0]

    @property
    def layers(self) -> int:
        return self.gates.shape[1]

    def saturation(self) -> np.ndarray:
        """(L, 4): the fraction of steps and units in which each gate is saturated (i, f, o below 0.02 or
        above 0.98; g beyond +-0.98). A gate saturated most of the time passes or blocks everything."""
        g = self.gates.astype(np.float64)
        sig = (g < SATURATED) | (g > 1.0 - SATURATED)
        sig[:, :, 2] = np.abs(g[:, :, 2]) > 1.0 - SATURATED
        return sig.mean(axis=(0, 3)) if self.steps else np.zeros((self.layers, 4))

    def cell_range(self) -> np.ndarray:
        """(T, L): the largest |c| of each layer after each step (memory held in the cell state)."""
        return np.abs(self.c).max(axis=2)

    def errors(self, reference: "Trace") -> dict[str, np.ndarray]:
        """Where this trace departs from ``reference`` (same model shape, same inputs): ``gates`` (L, 4)
        the largest |difference| of each layer's gates, ``c`` and ``h`` (L,) of each layer's states, ``y``
        the largest output difference (a 0-d array)."""
        for name in ("gates", "c", "h", "y"):
            if getattr(self, name).shape != getattr(reference, name).shape:
                raise ShapeError(f"the reference trace's {name} has shape {getattr(reference, name).shape}, "
                                 f"this one {getattr(self, name).shape}: trace the same inputs through a model "
                                 "of the same shape")

        def worst(a, b, axes):
            d = np.abs(a.astype(np.float64) - b.astype(np.float64))
            return d.max(axis=axes) if d.size else np.zeros(np.delete(d.shape, axes))

        return {"gates": worst(self.gates, reference.gates, (0, 3)), "c": worst(self.c, reference.c, (0, 2)),
                "h": worst(self.h, reference.h, (0, 2)), "y": np.asarray(worst(self.y, reference.y, (0, 1)))}


def plot_trace(trace: Trace, path: str | os.PathLike, *, reference: Trace | None = None, title: str = "",
               max_units: int = 64) -> None:
    """Draw ``trace`` into an image file (PNG, or what the extension says): per layer, heatmaps of the
    gates i, f, g, o and of c over time (the first ``max_units`` units); the fraction of time each gate is
    saturated; the range of |c| per layer over time; and, with ``reference``, the largest error each layer
    and gate adds against it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise LstmError('drawing a trace needs matplotlib: pip install "lstm-embed[plot]"') from None
    L = trace.layers
    rows = L + 1
    fig, axes = plt.subplots(rows, 5, figsize=(17, 2.6 * rows + 0.6), squeeze=False)
    units = min(max_units, trace.gates.shape[3])
    for layer in range(L):
        for k, name in enumerate(GATES):
            ax = axes[layer][k]
            img = trace.gates[:, layer, k, :units].T
            lo, hi = (-1.0, 1.0) if name == "g" else (0.0, 1.0)
            im = ax.imshow(img, aspect="auto", interpolation="nearest", cmap="RdBu_r" if name == "g" else "viridis",
                           vmin=lo, vmax=hi)
            ax.set_title(f"layer {layer}: gate {name}", fontsize=9)
            ax.set_ylabel("unit" if k == 0 else "")
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
        ax = axes[layer][4]
        cmax = float(np.abs(trace.c[:, layer, :units]).max()) if trace.steps else 1.0
        im = ax.imshow(trace.c[:, layer, :units].T, aspect="auto", interpolation="nearest", cmap="RdBu_r",
                       vmin=-max(cmax, 1e-6), vmax=max(cmax, 1e-6))
        ax.set_title(f"layer {layer}: cell state c", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    for ax in axes[L - 1][:5]:
        ax.set_xlabel("step")
    bottom = axes[L]
    sat = trace.saturation()
    width = 0.8 / max(L, 1)
    for layer in range(L):
        bottom[0].bar(np.arange(4) + layer * width, sat[layer], width, label=f"layer {layer}")
    bottom[0].set_xticks(np.arange(4) + 0.4 - width / 2, GATES)
    bottom[0].set_ylim(0, 1)
    bottom[0].set_title("fraction of time saturated", fontsize=9)
    bottom[0].legend(fontsize=7)
    rng = trace.cell_range()
    for layer in range(L):
        bottom[1].plot(rng[:, layer], label=f"layer {layer}")
    bottom[1].set_title("max |c| per layer", fontsize=9)
    bottom[1].set_xlabel("step")
    bottom[1].legend(fontsize=7)
    if reference is not None:
        err = trace.errors(reference)
        for layer in range(L):
            bottom[2].bar(np.arange(4) + layer * width, err["gates"][layer], width, label=f"layer {layer}")
        bottom[2].set_xticks(np.arange(4) + 0.4 - width / 2, GATES)
        bottom[2].set_title("max |gate error| vs reference", fontsize=9)
        bottom[2].legend(fontsize=7)
        bottom[3].bar(np.arange(L) - 0.2, err["c"], 0.4, label="c")
        bottom[3].bar(np.arange(L) + 0.2, err["h"], 0.4, label="h")
        bottom[3].set_xticks(np.arange(L), [f"layer {k}" for k in range(L)])
        bottom[3].set_title("max |state error| vs reference", fontsize=9)
        bottom[3].legend(fontsize=7)
        diff = np.abs(trace.y.astype(np.float64) - reference.y.astype(np.float64)).max(axis=1)
        bottom[4].plot(diff)
        bottom[4].set_title(f"max |output error| per step (worst {float(err['y']):.2g})", fontsize=9)
        bottom[4].set_xlabel("step")
    else:
        for ax in bottom[2:]:
            ax.axis("off")
        bottom[2].text(0, 0.5, "no reference: pass one (--against) to see\nthe error each layer and gate adds",
                       fontsize=9, va="center")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(os.fspath(path), dpi=90)
    plt.close(fig)
