"""The live-stream wire protocol of ``examples/server/server.py``: length-prefixed messages over TCP.

Every message, both ways, is ``u32 length`` (little-endian, bytes that follow) then ``u8 kind`` and a
body; all numbers little-endian, floats IEEE float32. One TCP connection carries one stream.

server -> client
    ``H`` hello, first message: u32 input_size, u32 output_size, u32 max_pending, then the model's dtype
          (UTF-8). A client may have at most max_pending frames unanswered.
    ``O`` output: u32 seq, float32[output_size] - the answer to frame ``seq``; answers come in frame order.
    ``X`` error: u32 seq, u8 fatal, UTF-8 "ErrorClass: message". Not fatal: that frame was refused
          (wrong size, NaN/inf, too large) and the stream's state is unchanged; send the next frame.
          Fatal: the server closes the connection after it (malformed message, flood).
          seq is 0xFFFFFFFF when the error belongs to no frame.
    ``E`` end: every frame was answered, the server closes the connection.
    ``S`` statistics: UTF-8 JSON (the reply to a client's ``S``).

client -> server
    ``F`` frame: u32 seq, float32[input_size].
    ``E`` end: answer what is pending, reply ``E`` and close. Closing the socket instead drops
          unanswered frames.
    ``S`` statistics request (empty body).
"""
from __future__ import annotations

import struct

__all__ = ["HELLO", "OUTPUT", "ERROR", "END", "FRAME", "STATS", "NO_SEQ", "MAX_MESSAGE", "pack", "pack_frame",
           "pack_hello", "pack_output", "pack_error", "unpack_hello", "unpack_error", "MessageReader",
           "ProtocolError"]

HELLO = ord("H")
OUTPUT = ord("O")
ERROR = ord("X")
END = ord("E")
FRAME = ord("F")
STATS = ord("S")
NO_SEQ = 0xFFFFFFFF
MAX_MESSAGE = 1 << 16  # longest message body either side accepts (a frame of 16k floats)

_LEN = struct.Struct("<I")
_HEAD = struct.Struct("<IB")        # length, kind
_SEQ_HEAD = struct.Struct("<IBI")   # length, kind, seq
_HELLO = struct.Struct("<III")
_ERR = struct.Struct("<IB")         # seq, fatal (after the kind byte)


class ProtocolError(ValueError):
    """A peer sent something this protocol does not allow (too long, unknown kind, truncated)."""


def pack(kind: int, body: bytes = b"") -> bytes:
    """One message: length, kind, body."""
    return _HEAD.pack(len(body) + 1, kind) + body


def pack_frame(seq: int, frame: bytes) -> bytes:
    """A frame message; ``frame`` is the float32 little-endian bytes of input_size values."""
    return _SEQ_HEAD.pack(len(frame) + 5, FRAME, seq) + frame


def pack_output(seq: int, row: bytes) -> bytes:
    """An output message; ``row`` is the float32 little-endian bytes of output_size values."""
    return _SEQ_HEAD.pack(len(row) + 5, OUTPUT, seq) + row


def pack_hello(input_size: int, output_size: int, max_pending: int, dtype: str) -> bytes:
    """The server's first message."""
    return pack(HELLO, _HELLO.pack(input_size, output_size, max_pending) + dtype.encode())


def pack_error(seq: int, fatal: bool, message: str) -> bytes:
    """An error message about frame ``seq`` (NO_SEQ: about no frame)."""
    return pack(ERROR, _ERR.pack(seq, 1 if fatal else 0) + message.encode("utf-8", "replace"))


def unpack_hello(body: bytes) -> tuple[int, int, int, str]:
    """(input_size, output_size, max_pending, dtype) from a hello body (after the kind byte)."""
    if len(body) < _HELLO.size:
        raise ProtocolError(f"hello message too short ({len(body)} bytes)")
    i, o, p = _HELLO.unpack_from(body)
    return i, o, p, bytes(body[_HELLO.size:]).decode()


def unpack_error(body: bytes) -> tuple[int, bool, str]:
    """(seq, fatal, message) from an error body (after the kind byte)."""
    if len(body) < _ERR.size:
        raise ProtocolError(f"error message too short ({len(body)} bytes)")
    seq, fatal = _ERR.unpack_from(body)
    return seq, bool(fatal), bytes(body[_ERR.size:]).decode("utf-8", "replace")


class MessageReader:
    """Splits a byte stream into messages: ``feed(data)`` then iterate ``messages()`` for
    ``(kind, body)`` pairs (body as bytes). Raises ProtocolError for a
    length of 0 or beyond ``max_message``."""

    __slots__ = ("_buf", "_pos", "max_message")

    def __init__(self, max_message: int = MAX_MESSAGE) -> None:
        self._buf = bytearray()
        self._pos = 0
        self.max_message = max_message

    def feed(self, data: bytes) -> None:
        """Append received bytes (drops the bytes of messages already returned)."""
        if self._pos:
            del self._buf[:self._pos]
            self._pos = 0
        self._buf += data

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as messages."""
        return len(self._buf) - self._pos

    def next(self) -> tuple[int, bytes] | None:
        """The next complete message as (kind, body), or None when more bytes are needed."""
        buf, pos = self._buf, self._pos
        if len(buf) - pos < 4:
            return None
        (n,) = _LEN.unpack_from(buf, pos)
        if n == 0 or n > self.max_message + 1:
            raise ProtocolError(f"message length {n} is outside 1..{self.max_message + 1}: not this protocol "
                                f"(each message is u32 length, u8 kind, body; see lstm_embed.wire)")
        if len(buf) - pos - 4 < n:
            return None
        kind = buf[pos + 4]
        body = bytes(buf[pos + 5:pos + 4 + n])
        self._pos = pos + 4 + n
        return kind, body

    def messages(self):
        """Every complete message buffered, as (kind, body) pairs."""
        while True:
            m = self.next()
            if m is None:
                return
            yield m
