"""Exceptions raised by lstm_embed. Each derives from LstmError and from the builtin it is a case of,
so ``except ValueError`` keeps working for callers that do not know this library."""


class LstmError(Exception):
    """Base class of every lstm_embed error. ``args[1]``, when present, is the C status code."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    @property
    def status(self) -> "int | None":
        """The C library's lstm_status code, or None for errors raised by the Python layer."""
        return self.args[1] if len(self.args) > 1 else None


class ModelFormatError(LstmError, ValueError):
    """The model file is not valid: wrong magic or version, truncated, damaged, or inconsistent."""


class ShapeError(LstmError, ValueError):
    """An input or output array has the wrong shape for this model."""


class DTypeError(LstmError, TypeError):
    """An input cannot be read as real numbers (strings, complex, objects...)."""


class NonFiniteInputError(LstmError, ValueError):
    """An input holds NaN or infinity. The stream's state was left unchanged."""


class StateError(LstmError, ValueError):
    """A stream or snapshot does not belong to this model, or a snapshot is damaged."""


class UnsupportedError(LstmError, ValueError):
    """The model cannot do this (for example stepping a bidirectional model one timestep at a time)."""


class ClosedModelError(LstmError, ValueError):
    """The model was closed (like I/O on a closed file, a ValueError)."""


class LstmMemoryError(LstmError, MemoryError):
    """The C library could not allocate memory."""


class ConversionError(LstmError, ValueError):
    """A PyTorch model or checkpoint cannot be converted (unsupported variant, inconsistent shapes...)."""
