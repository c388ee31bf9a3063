"""lstm_embed: fast, small, validated LSTM inference on a pre-allocated state, from PyTorch models.

    import lstm_embed
    data = lstm_embed.convert_torch(torch_lstm, head=linear)   # needs torch
    model = lstm_embed.Model.from_bytes(data)                  # or Model.load("model.lstm")
    stream = model.stream()
    y = stream.step(x)                                         # one timestep
"""
from lstm_embed._blas import load_openblas

load_openblas()

from lstm_embed._lstm import Model, Stream, status_message  # noqa: E402
from lstm_embed.errors import (  # noqa: E402
    ClosedModelError,
    ConversionError,
    DTypeError,
    LstmError,
    LstmMemoryError,
    ModelFormatError,
    NonFiniteInputError,
    ShapeError,
    StateError,
    UnsupportedError,
)

__version__ = "0.1.0"


def convert_torch(lstm, *, head=None, head_activation=None, dtype="float32", calibration=None,
                  tolerance=None) -> bytes:
    """Convert a PyTorch ``nn.LSTM`` or ``nn.LSTMCell`` (+ optional ``nn.Linear`` head) to model-file bytes.

    ``dtype``: "float32", "int8" or "int8-dynamic"; see ``lstm_embed.convert.convert_torch`` for
    ``calibration`` and ``tolerance``. torch is imported only when this is called.
    """
    from lstm_embed.convert import convert_torch as _convert

    return _convert(lstm, head=head, head_activation=head_activation, dtype=dtype, calibration=calibration,
                    tolerance=tolerance)


__all__ = [
    "ClosedModelError",
    "ConversionError",
    "DTypeError",
    "LstmError",
    "LstmMemoryError",
    "Model",
    "ModelFormatError",
    "NonFiniteInputError",
    "ShapeError",
    "StateError",
    "Stream",
    "UnsupportedError",
    "convert_torch",
    "status_message",
]
