"""lstm_embed: fast, small, validated LSTM inference on a pre-allocated state, from PyTorch models.

    import lstm_embed
    data = lstm_embed.convert_torch(torch_lstm, head=linear)   # needs torch
    model = lstm_embed.Model.from_bytes(data)                  # or Model.load("model.lstm")
    stream = model.stream()
    y = stream.step(x)                                         # one timestep

An integer-only model (``dtype="int16x8"``, calibration data required) also steps int16 in, int16 out:
``stream.step_int(xq)`` with ``xq = round(x / model.input_scale)``, ``y = yq * model.output_scale``.
"""
from lstm_embed._blas import load_openblas

load_openblas()

from lstm_embed import _lstm  # noqa: E402
from lstm_embed._lstm import ISAS, Model, Stream, status_message  # noqa: E402
from lstm_embed.onnx_import import convert_onnx  # noqa: E402  (onnx imported only when called)
from lstm_embed.errors import (  # noqa: E402
    ArgumentTypeError,
    ClosedModelError,
    ConversionError,
    DTypeError,
    InputRangeError,
    InvalidArgumentError,
    LstmError,
    LstmMemoryError,
    ModelFileError,
    ModelFileIsADirectoryError,
    ModelFileNotFoundError,
    ModelFilePermissionError,
    ModelFormatError,
    NonFiniteInputError,
    QueueFullError,
    ShapeError,
    StateError,
    StreamBusyError,
    StreamClosedError,
    UnsupportedError,
)

from lstm_embed.convert import Conversion, ConversionWarning  # noqa: E402
from lstm_embed.batcher import BatchedStream, BatcherStats, StreamBatcher  # noqa: E402

__version__ = "0.3.0"


def convert_torch(lstm, *, head=None, head_activation=None, dtype="float32", calibration=None,
                  tolerance=None, report=False):
    """Convert a PyTorch ``nn.LSTM`` or ``nn.LSTMCell`` (+ optional ``nn.Linear`` head) to model-file bytes.

    ``dtype``: "float32", "int8", "int8-dynamic", "int8-a16" or "int16x8" (integer-only, for
    microcontrollers without an FPU: needs ``calibration``, docs/int16x8.md); see
    ``lstm_embed.convert.convert_torch`` for ``calibration`` and ``tolerance``; ``report=True`` returns a
    ``Conversion`` instead of the bytes.
    torch is imported only when this is called.
    """
    from lstm_embed.convert import convert_torch as _convert

    return _convert(lstm, head=head, head_activation=head_activation, dtype=dtype, calibration=calibration,
                    tolerance=tolerance, report=report)


def supported_isas() -> list[str]:
    """Names of the instruction sets (kernel paths) this CPU and this build can run, "auto" excluded,
    e.g. ``["reference", "avx2"]``. Any of them, or "auto", is a valid ``isa=`` of ``Model.load`` and
    ``Model.from_bytes``; the full list of names is ``lstm_embed.ISAS``."""
    return _lstm.supported_isas()


def best_isa() -> str:
    """The instruction set ``isa="auto"`` picks on this CPU (one of ``supported_isas()``)."""
    return _lstm.best_isa()


def c_version() -> str:
    """Version of the linked C library ("MAJOR.MINOR.PATCH"), which may differ from ``__version__``."""
    return _lstm.c_version()


__all__ = [
    "ArgumentTypeError",
    "BatchedStream",
    "BatcherStats",
    "ClosedModelError",
    "Conversion",
    "ConversionError",
    "ConversionWarning",
    "DTypeError",
    "ISAS",
    "InputRangeError",
    "InvalidArgumentError",
    "LstmError",
    "LstmMemoryError",
    "Model",
    "ModelFileError",
    "ModelFileIsADirectoryError",
    "ModelFileNotFoundError",
    "ModelFilePermissionError",
    "ModelFormatError",
    "NonFiniteInputError",
    "QueueFullError",
    "ShapeError",
    "StateError",
    "Stream",
    "StreamBatcher",
    "StreamBusyError",
    "StreamClosedError",
    "UnsupportedError",
    "best_isa",
    "c_version",
    "convert_onnx",
    "convert_torch",
    "status_message",
    "supported_isas",
]
