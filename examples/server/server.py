"""A live-stream LSTM server: one TCP connection per audio stream, frames in, one output row per frame out.

    python examples/server/server.py --model examples/models/tiny.lstm            # 127.0.0.1, a free port
    python examples/server/server.py --model vad.lstm --port 7000 --mode naive    # step() per frame

The protocol (length-prefixed messages) is described in ``lstm_embed/wire.py``. In ``--mode batch``
(default) every connection's frames go through one ``lstm_embed.StreamBatcher``: whichever streams have
a frame waiting are stepped together in one ``model.step_many`` per tick. ``--mode naive`` calls
``Stream.step`` once per frame as it arrives, for comparison.

Back-pressure (``--flood``): a connection may have ``--max-pending`` frames unanswered. With ``wait``
(default) further frames stay unparsed in a buffer of at most 64 KiB (READ_BUDGET), beyond which the
server stops reading that socket until answers free room, so TCP slows the client down;
with ``refuse`` a frame beyond the limit gets a fatal ``QueueFullError`` and the connection is closed.
A frame of the wrong size or with NaN/inf gets a non-fatal error for that frame; a malformed message a
fatal one. Nothing a client does stalls or changes another connection's stream.

Ctrl-C or SIGTERM stops the server and prints its statistics as JSON.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import signal
import struct
import sys
import time
from typing import Any

import numpy as np

import lstm_embed
from lstm_embed import wire

_SEQ = struct.Struct("<I")
_LITTLE_ENDIAN = sys.byteorder == "little"
READ_BUDGET = 1 << 16  # bytes of unprocessed frames a blocked connection may hold before its socket is paused


class LiveServer:
    """Serves one model over the live-stream protocol. ``await start()`` binds, ``await close()`` stops.

    ``mode``: "batch" (a StreamBatcher) or "naive" (``Stream.step`` per frame). ``max_pending``,
    ``max_delay``, ``max_batch`` and ``offload_min`` go to the StreamBatcher; ``flood``: "wait" or
    "refuse" (see the module docstring); ``max_streams``: connections beyond it are refused.
    """

    def __init__(self, model: lstm_embed.Model, *, mode: str = "batch", max_pending: int = 8, flood: str = "wait",
                 max_delay: float = 0.0, max_batch: int | None = None, offload_min: int | None = None,
                 max_streams: int = 10000) -> None:
        if mode not in ("batch", "naive"):
            raise ValueError(f"mode must be 'batch' or 'naive', got {mode!r}")
        if flood not in ("wait", "refuse"):
            raise ValueError(f"flood must be 'wait' or 'refuse', got {flood!r}")
        self.model = model
        self.mode = mode
        self.max_pending = max_pending
        self.flood = flood
        self.max_streams = max_streams
        self._batcher_args = dict(max_pending=max_pending, max_delay=max_delay, max_batch=max_batch,
                                  offload_min=offload_min)
        self.batcher: lstm_embed.StreamBatcher | None = None
        self.connections: set[_Connection] = set()
        self.counts = collections.Counter()   # frames, outputs, frame_errors, fatal_errors, connections
        self.naive_step_seconds = 0.0
        self._server: asyncio.base_events.Server | None = None
        self._hello = wire.pack_hello(model.input_size, model.output_size, max_pending, model.dtype)
        self._frame_bytes = 4 * model.input_size
        self._cpu0 = time.process_time()
        self._wall0 = time.perf_counter()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen on host:port (port 0: a free one); returns the address bound."""
        if self.mode == "batch":
            self.batcher = lstm_embed.StreamBatcher(self.model, **self._batcher_args)
            self.batcher.start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), host, port)
        return self._server.sockets[0].getsockname()[:2]

    async def close(self) -> None:
        """Stop listening, drop every connection, stop the batcher."""
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.abort()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        if self.batcher is not None:
            await self.batcher.close()

    def stats(self) -> dict[str, Any]:
        """Counters, CPU time of this process and, in batch mode, the batcher's counters."""
        d: dict[str, Any] = {"mode": self.mode, "open_connections": len(self.connections), **self.counts,
                             "process_cpu_s": time.process_time() - self._cpu0,
                             "wall_s": time.perf_counter() - self._wall0}
        if self.batcher is not None:
            d["batcher"] = self.batcher.stats.as_dict()
            d["lstm_s"] = self.batcher.stats.step_seconds
        else:
            d["lstm_s"] = self.naive_step_seconds
        return d


class _Connection(asyncio.Protocol):
    """One client connection = one stream."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.reader = wire.MessageReader()
        self.transport: asyncio.Transport | None = None
        self.live: lstm_embed.BatchedStream | None = None
        self.stream: lstm_embed.Stream | None = None
        self.blocked = False        # max_pending frames unanswered: received frames wait in the buffer
        self.read_paused = False    # the socket is not read (buffer over READ_BUDGET, or writes paused)
        self.write_paused = False   # the client does not read its answers
        self.ending = False         # END received (or EOF with every received frame taken)
        self.eof = False
        self.done = False
        self.out: list[bytes] = []  # messages to send at the end of this loop iteration

    # ---- connection events ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        srv = self.server
        if len(srv.connections) >= srv.max_streams:
            self.fatal(wire.NO_SEQ, f"server full: {srv.max_streams} streams open; try again later")
            return
        srv.connections.add(self)
        srv.counts["connections"] += 1
        peer = transport.get_extra_info("peername")
        if srv.batcher is not None:
            self.live = srv.batcher.open(name=f"{peer[0]}:{peer[1]}" if peer else None, on_output=self.output)
        else:
            self.stream = srv.model.stream()
        self.emit(srv._hello)

    def connection_lost(self, exc: Exception | None) -> None:
        self.done = True
        self.server.connections.discard(self)
        if self.live is not None:
            self.live.abort()   # the client vanished: drop its pending frames, the others go on

    def pause_writing(self) -> None:
        self.write_paused = True
        self._pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        if not self.done:
            self._resume_reading()
            self.process()

    def _pause_reading(self) -> None:
        if not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.read_paused and not self.write_paused and self.reader.buffered <= READ_BUDGET:
            self.read_paused = False
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        if self.blocked:   # frames wait for room; stop reading the socket only past the byte budget
            if self.reader.buffered > READ_BUDGET:
                self._pause_reading()
            return
        self.process()

    def eof_received(self) -> bool:
        """The client half-closed: like END after the frames already received (answer them, then close)."""
        self.eof = True
        self.process()
        return True

    # ---- messages ------------------------------------------------------------------------------------

    def process(self) -> None:
        """Handle buffered messages until none is left or back-pressure stops reading."""
        srv = self.server
        while not (self.done or self.ending or self.write_paused):
            if (self.live is not None and srv.flood == "wait"
                    and self.live.pending >= srv.max_pending):
                self.blocked = True
                if self.reader.buffered > READ_BUDGET:
                    self._pause_reading()
                return
            try:
                msg = self.reader.next()
            except wire.ProtocolError as e:
                self.fatal(wire.NO_SEQ, f"ProtocolError: {e}")
                return
            if msg is None:
                if self.eof:
                    self.ending = True
                    self.maybe_end()
                return
            kind, body = msg
            if kind == wire.FRAME:
                self.frame(body)
            elif kind == wire.END:
                self.ending = True
                self.maybe_end()
            elif kind == wire.STATS:
                self.emit(wire.pack(wire.STATS, json.dumps(srv.stats()).encode()))
            else:
                self.fatal(wire.NO_SEQ, f"ProtocolError: unknown message kind {kind!r} (frames are 'F')")

    def frame(self, body: bytes) -> None:
        srv = self.server
        if len(body) < 4:
            self.fatal(wire.NO_SEQ, "ProtocolError: a frame message needs a u32 seq")
            return
        (seq,) = _SEQ.unpack_from(body)
        srv.counts["frames"] += 1
        if len(body) - 4 != srv._frame_bytes:
            srv.counts["frame_errors"] += 1
            self.emit(wire.pack_error(
                seq, False, f"ShapeError: frame {seq} has {len(body) - 4} bytes, this model takes "
                            f"{srv._frame_bytes} (input_size={srv.model.input_size} float32); it was refused"))
            return
        if self.live is not None:
            # the batcher takes native float32 bytes as they are (the wire is little-endian)
            x = body[4:] if _LITTLE_ENDIAN else np.frombuffer(body, "<f4", offset=4).astype(np.float32)
            try:
                self.live.send(x, seq)   # the answer comes to self.output(seq, row, error)
            except lstm_embed.QueueFullError as e:
                self.fatal(seq, f"QueueFullError: {e}")
                return
            except lstm_embed.LstmError as e:
                srv.counts["frame_errors"] += 1
                self.emit(wire.pack_error(seq, False, f"{type(e).__name__}: {e}"))
                return
        else:
            x = np.frombuffer(body, "<f4", offset=4)
            t = time.perf_counter()
            try:
                y = self.stream.step(x)
            except lstm_embed.LstmError as e:
                srv.counts["frame_errors"] += 1
                self.emit(wire.pack_error(seq, False, f"{type(e).__name__}: {e}"))
                return
            finally:
                srv.naive_step_seconds += time.perf_counter() - t
            srv.counts["outputs"] += 1
            self.emit(wire.pack_output(seq, y.tobytes() if _LITTLE_ENDIAN else y.astype("<f4").tobytes()))

    def output(self, seq: int, row: np.ndarray | None, error: Exception | None) -> None:
        """The batcher's answer to frame ``seq`` (called from its tick, in frame order)."""
        if self.done:
            return
        srv = self.server
        if error is None:
            srv.counts["outputs"] += 1
            self.emit(wire.pack_output(seq, row.tobytes() if _LITTLE_ENDIAN else row.astype("<f4").tobytes()))
        else:
            srv.counts["frame_errors"] += 1
            self.emit(wire.pack_error(seq, False, f"{type(error).__name__}: {error}"))
        if self.blocked and self.live.pending < srv.max_pending:
            self.blocked = False
            self.process()
            self._resume_reading()
        if self.ending:
            self.maybe_end()

    def maybe_end(self) -> None:
        if self.ending and not self.done and (self.live is None or self.live.pending == 0):
            self.emit(wire.pack(wire.END))
            self.close()

    def emit(self, message: bytes) -> None:
        """Queue a message; the queue is written in one call at the end of the loop iteration, so the
        answers of a burst of ticks leave in one system call."""
        if not self.out:
            asyncio.get_running_loop().call_soon(self.flush)
        self.out.append(message)

    def flush(self) -> None:
        if self.out:
            data = b"".join(self.out)
            self.out.clear()
            if not self.transport.is_closing():
                self.transport.write(data)

    # ---- ending ----------------------------------------------------------------------------------------

    def fatal(self, seq: int, message: str) -> None:
        """Tell the client why, then close this connection only."""
        self.server.counts["fatal_errors"] += 1
        if not self.done:
            self.emit(wire.pack_error(seq, True, message))
            self.close()

    def close(self) -> None:
        self.done = True
        self.server.connections.discard(self)
        if self.live is not None:
            self.live.abort()
        self.flush()
        self.transport.close()   # sends what is buffered first

    def abort(self) -> None:
        self.done = True
        self.transport.abort()


async def serve(args: argparse.Namespace) -> dict[str, Any]:
    """Run the server until SIGINT/SIGTERM; returns its statistics."""
    model = lstm_embed.Model.load(args.model)
    server = LiveServer(model, mode=args.mode, max_pending=args.max_pending, flood=args.flood,
                        max_delay=args.max_delay, max_batch=args.max_batch,
                        offload_min=None if args.offload_min < 0 else args.offload_min,
                        max_streams=args.max_streams)
    host, port = await server.start(args.host, args.port)
    print(f"listening on {host}:{port} mode={args.mode} model={args.model} dtype={model.dtype} "
          f"isa={model.isa}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    stats = server.stats()
    await server.close()
    return stats


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model file (lstm-embed convert ...)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=0, help="port (default 0: a free one, printed at start)")
    p.add_argument("--mode", choices=("batch", "naive"), default="batch")
    p.add_argument("--max-pending", type=int, default=8, help="unanswered frames per stream (default 8)")
    p.add_argument("--flood", choices=("wait", "refuse"), default="wait",
                   help="beyond max-pending: stop reading the socket (wait) or close it with an error (refuse)")
    p.add_argument("--max-delay", type=float, default=0.0, help="seconds a tick waits to gather frames (default 0)")
    p.add_argument("--max-batch", type=int, default=None, help="most streams per step_many (default: all)")
    p.add_argument("--offload-min", type=int, default=-1,
                   help="batches this large step in a worker thread; -1: always inline (default)")
    p.add_argument("--max-streams", type=int, default=10000, help="connections beyond this are refused")
    args = p.parse_args(argv)
    stats = asyncio.run(serve(args))
    print(json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
