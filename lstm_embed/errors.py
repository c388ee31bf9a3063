"""Exceptions raised by lstm_embed. Each derives from LstmError and from the builtin it is a case of,
so ``except ValueError`` keeps working for callers that do not know this library.

    LstmError
    +-- ModelFormatError(ValueError)      the model file is invalid (C statuses 3-10)
    +-- ShapeError(ValueError)            wrong shape or memory layout of an input or ``out=`` array
    +-- ArgumentTypeError(TypeError)      an argument of the wrong kind (not a Stream, not bytes-like...)
    |   +-- DTypeError                    an array that cannot be read as real numbers, or a wrong ``out`` dtype
    +-- InvalidArgumentError(ValueError)  a right-typed argument with an unusable value (C statuses 1, 2)
    +-- NonFiniteInputError(ValueError)   NaN or infinity in an input (C status 11)
    +-- InputRangeError(ValueError)       an input value too large (C status 17)
    +-- StateError(ValueError)            a stream or snapshot of another model, a damaged snapshot (12, 13, 15)
    +-- UnsupportedError(ValueError)      the model or this machine cannot do that (14, 18)
    +-- ClosedModelError(ValueError)      the model was closed or never opened
    +-- StreamBusyError(RuntimeError)     a stream used by two threads at once
    +-- LstmMemoryError(MemoryError)      out of memory (16)
    +-- ConversionError(ValueError)       a PyTorch model or checkpoint cannot be converted
    +-- ScoreError(RuntimeError)          a scoring run cannot start or finish (lstm_embed.score)
    +-- MissingDependencyError(ImportError)  an optional extra (e.g. lstm-embed[dask]) is not installed
    +-- QueueFullError(RuntimeError)      a live stream has max_pending frames waiting (StreamBatcher)
    +-- StreamClosedError(ValueError)     a frame for a closed or aborted live stream (StreamBatcher)
    +-- ModelFileError(OSError)           ``Model.load`` / ``Model.save`` cannot read or write the file
        +-- ModelFileNotFoundError(FileNotFoundError)
        +-- ModelFilePermissionError(PermissionError)
        +-- ModelFileIsADirectoryError(IsADirectoryError)
"""


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
    """An input or output array has the wrong shape for this model, or an ``out=`` array has a memory
    layout the result cannot be written into (not C-contiguous, misaligned)."""


class ArgumentTypeError(LstmError, TypeError):
    """An argument is of the wrong kind: a non-Stream in ``step_many``, something that is not bytes-like
    where model or snapshot bytes are expected, an ``isa`` that is not a string..."""


class DTypeError(ArgumentTypeError):
    """An input cannot be read as real numbers (strings, complex, objects...), or an ``out=`` array is
    not a float32 numpy array."""


class InvalidArgumentError(LstmError, ValueError):
    """An argument has the right type but a value the library cannot use: a read-only ``out=`` array,
    the same stream twice in ``step_many``, an unknown ``isa`` name, a closed mmap..."""


class NonFiniteInputError(LstmError, ValueError):
    """An input holds NaN or infinity. The stream's state was left unchanged."""


class InputRangeError(LstmError, ValueError):
    """An input value's magnitude is too large: beyond 2^64 (``LSTM_MAX_ABS_INPUT`` of the C library),
    or beyond float32's range (about 3.4e38) for float64 input. The stream's state was left unchanged."""


class StateError(LstmError, ValueError):
    """A stream or snapshot does not belong to this model, or a snapshot is damaged."""


class UnsupportedError(LstmError, ValueError):
    """The model cannot do this (for example stepping a bidirectional model one timestep at a time), or
    this CPU or build lacks the requested instruction set."""


class ClosedModelError(LstmError, ValueError):
    """The model was closed, or never opened (like I/O on a closed file, a ValueError)."""


class StreamBusyError(LstmError, RuntimeError):
    """The stream is in use by another thread. A stream may be used by one thread at a time: give each
    thread its own stream, or serialise the calls with a lock. Nothing was changed."""


class LstmMemoryError(LstmError, MemoryError):
    """The C library could not allocate memory."""


class ConversionError(LstmError, ValueError):
    """A PyTorch model or checkpoint cannot be converted (unsupported variant, inconsistent shapes...)."""


class ScoreError(LstmError, RuntimeError):
    """A scoring run (``lstm_embed.score``) cannot start or finish as a whole: the Dask scheduler cannot be
    reached, the output folder holds another run's outputs, or the workers cannot run the scoring code.
    A single input that cannot be scored is not this error: it is reported in ``ScoreReport.failed``."""


class MissingDependencyError(LstmError, ImportError):
    """A feature needs an optional extra that is not installed; the message names the pip command."""


class ModelFileError(LstmError, OSError):
    """``Model.load`` or ``Model.save`` could not read or write the file. ``errno``, ``strerror`` and
    ``filename`` are those of the operating system's error; the common cases also derive from the matching
    OSError subclass, so ``except FileNotFoundError`` works as with ``open()``."""

    def __str__(self) -> str:
        return OSError.__str__(self)

    @property
    def status(self) -> "int | None":
        """Always None: this error comes from the operating system, not the C library."""
        return None


class ModelFileNotFoundError(ModelFileError, FileNotFoundError):
    """The model file (or the folder to save it in) does not exist."""


class ModelFilePermissionError(ModelFileError, PermissionError):
    """No permission to read or write the model file."""


class ModelFileIsADirectoryError(ModelFileError, IsADirectoryError):
    """The path names a directory, not a model file."""


def model_file_error(e: OSError) -> ModelFileError:
    """The ModelFileError (of the matching OSError subclass) for an OSError from opening or reading a file."""
    for base, cls in ((FileNotFoundError, ModelFileNotFoundError), (PermissionError, ModelFilePermissionError),
                      (IsADirectoryError, ModelFileIsADirectoryError)):
        if isinstance(e, base):
            break
    else:
        cls = ModelFileError
    if e.errno is None:
        return cls(str(e))
    return cls(e.errno, e.strerror, e.filename) if e.filename is not None else cls(e.errno, e.strerror)


class QueueFullError(LstmError, RuntimeError):
    """A live stream of a ``StreamBatcher`` already has its maximum of frames waiting for their outputs
    (``max_pending``): the client sends faster than the batcher steps. The frame was not taken and the
    stream's state is unchanged. Await ``BatchedStream.step()`` / ``put()`` instead of ``submit()`` to
    wait for room, or send no more than one frame ahead of the outputs you have read."""


class StreamClosedError(LstmError, ValueError):
    """A frame was submitted to a ``BatchedStream`` that was closed or aborted, or to a stream of a
    ``StreamBatcher`` that was closed (like I/O on a closed file, a ValueError). Open a new stream."""
