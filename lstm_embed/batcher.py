"""A micro-batcher for live streams: many connections, one ``Model.step_many`` per tick.

    batcher = StreamBatcher(model)                 # inside a running asyncio event loop
    live = batcher.open()                          # one per connection / audio stream
    y = await live.step(frame)                     # this frame's output row, in order
    await live.close()                             # answers what is pending, then lets the stream go
    await batcher.close()

Each live stream (``BatchedStream``) owns one ``Stream`` of the model and a bounded queue of frames.
Whenever frames are waiting, the batcher takes the oldest frame of every stream that has one (one per
stream: a stream advances one timestep per tick) and steps them all in ONE ``model.step_many`` call;
a stream with several frames queued gets the next one in the next tick, so each stream's frames are
stepped in the order they were submitted, and a stream that sends faster than the others cannot take
more than its one row per tick. Outputs are bit for bit those of ``Stream.step`` on each stream alone
(``step_many`` advances each stream exactly as ``step`` does).

Back-pressure: a stream holds at most ``max_pending`` frames that were submitted and not yet answered.
``submit()`` never waits and raises ``QueueFullError`` when the stream is at that limit; ``put()`` and
``step()`` wait for room instead. Either way memory per stream is bounded.

Bad input is refused for its stream only and the stream stays usable with its state unchanged: a wrong
length raises ``ShapeError`` and non-numbers ``DTypeError`` at submit; NaN or infinity
(``NonFiniteInputError``) and magnitudes beyond 2^64 (``InputRangeError``) are found for the whole tick
in one vectorised pass and raised by that frame's future (or passed to ``on_output``), while the
other frames of the tick step as usual. Should ``step_many`` still fail for a tick, the batcher steps
that tick's streams one by one, so only the stream at fault gets the error. A stream whose client vanished is ``abort()``-ed: its waiting frames are dropped and the others
never notice.

``step_many`` runs inline in the event loop by default: at small model sizes one call for hundreds of
streams takes well under a millisecond, less than a hop to a worker thread costs. The C step releases
the GIL, so ``offload_min=`` moves large batches to a worker thread (for large models).

For a server, ``open(on_output=...)`` with ``send(frame, tag)`` skips the future per frame: the output
goes to ``on_output(tag, row, error)`` straight from the tick, in frame order.
"""
from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import math
from typing import Any, Callable

import numpy as np

from lstm_embed._lstm import Model, Stream
from lstm_embed.errors import (
    DTypeError,
    InputRangeError,
    InvalidArgumentError,
    LstmError,
    NonFiniteInputError,
    QueueFullError,
    ShapeError,
    StreamClosedError,
)

__all__ = ["BatchedStream", "BatcherStats", "StreamBatcher"]

_MAX_ABS_INPUT = 2.0 ** 64  # LSTM_MAX_ABS_INPUT of the C library

OutputCallback = Callable[[Any, 'np.ndarray | None', 'LstmError | None'], None]
"""``on_output(tag, row, error)``: the output row of the frame sent with ``tag``, or its error."""


class BatcherStats:
    """Counters of a ``StreamBatcher`` (read them at any time; they only grow).

    ``ticks``: step_many calls; ``frames``: frames stepped; ``refused``: frames refused (bad input, a
    full queue, a closed stream); ``fallbacks``: batches re-run stream by stream after step_many raised;
    ``max_batch_seen``: the largest batch; ``step_seconds``: time inside step_many (wall clock).
    """

    __slots__ = ("ticks", "frames", "refused", "fallbacks", "max_batch_seen", "step_seconds")

    def __init__(self) -> None:
        self.ticks = 0
        self.frames = 0
        self.refused = 0
        self.fallbacks = 0
        self.max_batch_seen = 0
        self.step_seconds = 0.0

    def as_dict(self) -> dict[str, float]:
        """The counters as a plain dict."""
        return {name: getattr(self, name) for name in self.__slots__}

    def __repr__(self) -> str:
        return f"BatcherStats({', '.join(f'{k}={v!r}' for k, v in self.as_dict().items())})"


class BatchedStream:
    """One live stream of a ``StreamBatcher``: its frames go through the batcher, in order.

    Made by ``StreamBatcher.open()``; use it from the batcher's event loop only.
    """

    __slots__ = ("_batcher", "_stream", "_queue", "_pending", "_room", "_closing", "_closed", "_idle",
                 "_scheduled", "_on_output", "name")

    def __init__(self, batcher: StreamBatcher, stream: Stream, name: str | None,
                 on_output: OutputCallback | None) -> None:
        self._batcher = batcher
        self._stream = stream
        # (frame, future or None, tag): a future for submit/put/step, None for send (tag goes to on_output)
        self._queue: collections.deque[tuple[bytes, asyncio.Future | None, Any]] = collections.deque()
        self._on_output = on_output
        self._pending = 0          # submitted and not yet answered (queued + in the running tick)
        self._room: asyncio.Event | None = None   # made on first wait
        self._idle: asyncio.Event | None = None   # made by close()
        self._closing = False      # close() called: no new frames, pending ones are still answered
        self._closed = False       # detached from the batcher
        self._scheduled = False    # in the batcher's ready list or in the running tick
        self.name = name

    # ---- state -------------------------------------------------------------------------------------

    @property
    def stream(self) -> Stream:
        """The ``Stream`` this live stream steps (its h and c). Do not step it yourself while the live
        stream is open: frames would interleave (and a concurrent step raises ``StreamBusyError``)."""
        return self._stream

    @property
    def pending(self) -> int:
        """Frames submitted and not yet answered (at most the batcher's ``max_pending``)."""
        return self._pending

    @property
    def closed(self) -> bool:
        """True once ``close()`` or ``abort()`` was called (no frame is taken any more)."""
        return self._closing or self._closed

    def _label(self) -> str:
        return f"live stream {self.name!r}" if self.name is not None else "this live stream"

    def __repr__(self) -> str:
        state = "closed" if self._closed else "closing" if self._closing else "open"
        return f"<BatchedStream {self.name or hex(id(self))} {state} pending={self._pending}>"

    # ---- submitting frames -------------------------------------------------------------------------

    def submit(self, frame: Any) -> asyncio.Future:
        """Queue one frame without waiting; returns a future of its output row ((output_size,) float32).

        ``frame``: input_size real numbers (anything numpy reads), or ``bytes`` of input_size float32 in
        native byte order (as read from a socket: taken without conversion). It is copied, so the caller
        may reuse its buffer.

        Raises at once, taking nothing: ``QueueFullError`` when ``max_pending`` frames are already
        waiting for their outputs, ``StreamClosedError`` after ``close()`` / ``abort()``, ``ShapeError``
        for a frame that is not input_size values, ``DTypeError`` for non-numbers, ``InputRangeError``
        for float64 values beyond float32's range. NaN, infinity and |x| > 2^64 are found for the whole
        tick in one pass: the future then raises ``NonFiniteInputError`` / ``InputRangeError`` and the
        stream's state is unchanged. The future's result is a row of an array of its tick; if the caller
        cancels the future the frame is still stepped (the state advances) and its output dropped.
        """
        fut = self._batcher._loop.create_future()
        self._take(frame, fut, None)
        return fut

    def send(self, frame: Any, tag: Any = None) -> None:
        """Queue one frame without waiting and without a future: its output is delivered by calling the
        ``on_output(tag, row, error)`` given to ``StreamBatcher.open()``, from the batcher's tick, in
        frame order (``error`` is None, or the LstmError of that frame with ``row`` None). The cheapest
        way in: a server passes the frame's sequence number as ``tag`` and writes the answer in the
        callback. Raises as ``submit()`` does; the callback must not raise."""
        if self._on_output is None:
            raise InvalidArgumentError("send() delivers outputs to on_output: open the stream with "
                                       "StreamBatcher.open(on_output=...), or use submit()/step()")
        self._take(frame, None, tag)

    def _take(self, frame: Any, fut: asyncio.Future | None, tag: Any) -> None:
        batcher = self._batcher
        if self._closing or self._closed:
            batcher.stats.refused += 1
            raise StreamClosedError(f"{self._label()} is closed; open a new one with StreamBatcher.open()")
        if self._pending >= batcher.max_pending:
            batcher.stats.refused += 1
            raise QueueFullError(
                f"{self._label()} already has {self._pending} frames waiting for their outputs "
                f"(max_pending={batcher.max_pending}): it sends faster than the batcher steps. Await "
                f"put()/step() to wait for room, or read outputs before sending more; this frame was not taken")
        self._queue.append((batcher._check_frame(frame), fut, tag))
        self._pending += 1
        if not self._scheduled:
            self._scheduled = True
            batcher._ready.append(self)
            if not (batcher._scheduled or batcher._busy):
                batcher._kick()

    async def put(self, frame: Any) -> asyncio.Future:
        """Queue one frame, first waiting while ``max_pending`` frames are pending (back-pressure);
        returns the future of its output. Bad frames raise as in ``submit()``."""
        while self._pending >= self._batcher.max_pending and not (self._closing or self._closed):
            if self._room is None:
                self._room = asyncio.Event()
            self._room.clear()
            await self._room.wait()
        return self.submit(frame)

    async def step(self, frame: Any) -> np.ndarray:
        """Step one frame through the batcher and return its output row ((output_size,) float32).
        Waits for room when ``max_pending`` frames are pending; bad frames raise as in ``submit()``."""
        return await (await self.put(frame))

    # ---- ending ------------------------------------------------------------------------------------

    async def close(self) -> None:
        """Take no more frames, wait until every pending frame is answered, then detach the stream.
        Idempotent. Waiters in ``put()`` / ``step()`` get ``StreamClosedError``."""
        self._closing = True
        if self._room is not None:
            self._room.set()
        if self._pending and not self._closed:
            if self._idle is None:
                self._idle = asyncio.Event()
            await self._idle.wait()
        self._detach()

    def abort(self) -> None:
        """Drop this stream now (its client vanished): queued frames are discarded (their futures
        cancelled), a frame in the running tick is stepped but its output dropped. Other streams are
        not affected. Idempotent; needs no await."""
        self._closing = True
        while self._queue:
            _, fut, _ = self._queue.popleft()
            if fut is not None:
                fut.cancel()
            self._pending -= 1
        if self._room is not None:
            self._room.set()
        self._detach()

    def _detach(self) -> None:
        if not self._closed:
            self._closed = True
            self._batcher._streams.discard(self)

    def _answered(self) -> None:
        """One pending frame was answered (or failed): wake a waiter for room, or close()."""
        self._pending -= 1
        if self._room is not None and self._pending < self._batcher.max_pending:
            self._room.set()
        if self._pending == 0 and self._idle is not None:
            self._idle.set()


class StreamBatcher:
    """Steps many live streams of one model together: one ``model.step_many`` per tick.

    Create it inside a running event loop (or call ``start()`` there first use); ``async with
    StreamBatcher(model) as b:`` closes it at the end.

    - ``max_pending``: frames one stream may have submitted and not yet answered (default 8, i.e.
      256 ms of audio at a 32 ms hop). ``submit()`` raises ``QueueFullError`` beyond it, ``put()`` /
      ``step()`` wait.
    - ``max_batch``: most streams per ``step_many`` (default: no limit); the rest go in the next tick,
      oldest first.
    - ``max_delay``: seconds to wait after the first frame of an idle period to collect more frames
      into the tick (default 0: step as soon as the loop has read what is already there; frames that
      arrive during a step form the next tick by themselves).
    - ``max_burst``: while streams still have frames queued after a tick (a backlog: the server fell
      behind), up to this many ticks run back to back before the loop runs I/O again (default 8), so a
      stream's answers leave together (fewer socket writes) instead of one per loop iteration. Each tick
      is still one ``step_many`` with one frame per stream.
    - ``offload_min``: batches of at least this many streams run ``step_many`` in the batcher's worker
      thread (the C step releases the GIL), so the loop keeps reading sockets meanwhile; smaller ones
      run inline. Default ``None``: always inline. Measured with 500 streams at H = 64 (int8-dynamic):
      a step_many of 500 takes ~0.5 ms inline, while the thread hop made it 2-4x longer in wall time,
      because the worker waits for the GIL behind the busy event loop (up to the 5 ms switch interval).
      Worth trying for large models, where one step_many takes many milliseconds.
    """

    def __init__(self, model: Model, *, max_pending: int = 8, max_batch: int | None = None,
                 max_delay: float = 0.0, offload_min: int | None = None, max_burst: int = 8) -> None:
        if not isinstance(model, Model):
            raise TypeError(f"model must be an lstm_embed.Model, got {type(model).__name__}")
        if model.num_directions != 1:
            raise ValueError("live streams step one timestep at a time, which needs a unidirectional model")
        if not isinstance(max_pending, int) or max_pending < 1:
            raise ValueError(f"max_pending must be an int >= 1, got {max_pending!r}")
        if max_batch is not None and (not isinstance(max_batch, int) or max_batch < 1):
            raise ValueError(f"max_batch must be None or an int >= 1, got {max_batch!r}")
        if not isinstance(max_burst, int) or max_burst < 1:
            raise ValueError(f"max_burst must be an int >= 1, got {max_burst!r}")
        if not (isinstance(max_delay, (int, float)) and 0 <= max_delay < math.inf):
            raise ValueError(f"max_delay must be a finite number of seconds >= 0, got {max_delay!r}")
        self.model = model
        self.max_pending = max_pending
        self.max_batch = max_batch
        self.max_delay = float(max_delay)
        self.offload_min = offload_min
        self.max_burst = max_burst
        self.stats = BatcherStats()
        self._input_size = model.input_size
        self._shape = (model.input_size,)
        self._frame_bytes = 4 * model.input_size
        self._scheduled = False   # a tick is scheduled on the loop
        self._busy = False        # a tick is running (its step_many maybe in the worker thread)
        self._handle: asyncio.Handle | asyncio.TimerHandle | None = None
        self._burst = 0           # ticks run back to back since the loop last ran one
        self._streams: set[BatchedStream] = set()
        self._ready: collections.deque[BatchedStream] = collections.deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._closed = False

    # ---- life cycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Bind to the running event loop (``open()`` does this if needed); ticks run as callbacks of
        that loop, scheduled whenever a frame waits and no tick is due."""
        if self._closed:
            raise StreamClosedError("this StreamBatcher was closed; make a new one")
        if self._loop is None:
            self._loop = asyncio.get_running_loop()

    async def __aenter__(self) -> StreamBatcher:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def streams(self) -> int:
        """Number of open live streams."""
        return len(self._streams)

    def open(self, name: str | None = None, *, on_output: OutputCallback | None = None) -> BatchedStream:
        """A new live stream (its own state, all zero: a compact stream, h and c only, since the batcher
        steps it with step_many). ``name`` appears in its error messages; ``on_output(tag, row, error)``
        receives the outputs of frames queued with ``send()``."""
        self.start()
        live = BatchedStream(self, self.model.stream(compact=True), name, on_output)
        self._streams.add(live)
        return live

    async def close(self) -> None:
        """Close every live stream (pending frames are answered first), cancel a scheduled tick and stop the
        worker thread. Idempotent."""
        if self._closed:
            return
        if self._streams:
            await asyncio.gather(*(s.close() for s in list(self._streams)))
        self._closed = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    # ---- frames ----------------------------------------------------------------------------------------

    def _check_frame(self, frame: Any) -> bytes:
        """The frame as float32 bytes (a copy), or ShapeError / DTypeError / InputRangeError when it is not
        input_size real numbers that float32 can hold. NaN, infinity and magnitudes beyond 2^64 are
        found by ``_bad_rows`` for the whole tick at once."""
        if type(frame) is np.ndarray and frame.dtype == np.float32 and frame.shape == self._shape:
            return frame.tobytes()
        if type(frame) is bytes:
            if len(frame) != self._frame_bytes:
                self.stats.refused += 1
                raise ShapeError(f"a frame given as bytes must hold input_size={self._input_size} float32 values "
                                 f"({self._frame_bytes} bytes), got {len(frame)} bytes")
            return frame
        try:
            a = np.asarray(frame)
            if a.dtype.kind not in "fiu":
                raise TypeError(f"dtype {a.dtype} is not real numbers")
            with np.errstate(over="ignore", invalid="ignore"):
                x = a.astype(np.float32)
        except (TypeError, ValueError) as e:
            self.stats.refused += 1
            raise DTypeError(f"a frame must be {self._input_size} real numbers (a float32 array), could "
                             f"not read {type(frame).__name__}: {e}") from e
        if x.shape != self._shape:
            self.stats.refused += 1
            raise ShapeError(f"a frame must have shape ({self._input_size},) for this model, got "
                             f"{x.shape}; send exactly input_size={self._input_size} float32 values per frame")
        if a.dtype.kind == "f" and a.dtype.itemsize > 4:
            lost = np.isinf(x) & np.isfinite(a)
            if lost.any():
                i = int(np.argmax(lost))
                self.stats.refused += 1
                raise InputRangeError(f"frame[{i}] = {a[i]:.4g} is beyond float32's range (and inputs beyond "
                                      f"+-2^64 are refused): scale the features as in training")
        return x.tobytes()

    @staticmethod
    def _bad_rows(xs: np.ndarray) -> np.ndarray:
        """Indices of the rows of a tick's (k, input_size) frames the C step would refuse (NaN,
        infinity, |x| > 2^64): one vectorised pass instead of a check per frame."""
        with np.errstate(invalid="ignore"):
            peak = np.abs(xs).max(axis=1)
        return np.flatnonzero(~(peak <= _MAX_ABS_INPUT))   # NaN compares false

    @staticmethod
    def _row_error(x: np.ndarray) -> LstmError:
        """The error for a frame ``_bad_rows`` refused."""
        bad = np.flatnonzero(~np.isfinite(x))
        if bad.size:
            return NonFiniteInputError(f"frame[{bad[0]}] is {x[bad[0]]}: NaN or infinity is refused; the "
                                       f"stream's state is unchanged and it takes the next frame")
        big = int(np.argmax(np.abs(x)))
        return InputRangeError(f"frame[{big}] = {x[big]:.4g} exceeds +-2^64; scale the features as in "
                               f"training. The stream's state is unchanged")

    # ---- ticks -------------------------------------------------------------------------------------------

    def _kick(self) -> None:
        """Schedule a tick: on the next loop iteration, after the I/O callbacks already due (so frames
        read in this iteration join it), or after ``max_delay``."""
        self._scheduled = True
        if self.max_delay:
            self._handle = self._loop.call_later(self.max_delay, self._loop_tick)
        else:
            self._handle = self._loop.call_soon(self._loop_tick)

    def _loop_tick(self) -> None:
        """A tick started by the event loop (the first of a burst)."""
        self._scheduled = False
        self._handle = None
        self._burst = 0
        self._tick()

    def _tick(self) -> None:
        if self._busy or self._closed:
            return
        self._busy = True
        try:
            self._start_tick()
        except BaseException:
            self._busy = False
            raise

    def _start_tick(self) -> None:
        ready = self._ready
        n = len(ready) if self.max_batch is None else min(len(ready), self.max_batch)
        lives = []
        frames = []
        items = []
        for _ in range(n):
            live = ready.popleft()
            if not live._queue:          # aborted while waiting
                live._scheduled = False
                continue
            x, fut, tag = live._queue.popleft()
            lives.append(live)
            frames.append(x)
            items.append((fut, tag))
        k = len(lives)
        if k == 0:
            self._end_tick()
            return
        xs = np.frombuffer(b"".join(frames), np.float32).reshape(k, self._input_size)
        streams = [live._stream for live in lives]
        bad = self._bad_rows(xs)
        refused: dict[int, LstmError] = {}
        if bad.size:
            # those frames are refused for their streams (state unchanged); the rest step as usual
            refused = {int(i): self._row_error(xs[i]) for i in bad}
            self.stats.refused += len(refused)
            keep = [i for i in range(k) if i not in refused]
            order = keep + sorted(refused)
            lives = [lives[i] for i in order]
            items = [items[i] for i in order]
            streams = [lives[i]._stream for i in range(len(keep))]
            xs = xs[keep]
            refused = {len(keep) + j: refused[i] for j, i in enumerate(sorted(refused))}
        start = self._loop.time()
        if self.offload_min is not None and k >= self.offload_min:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="lstm_embed-batcher")
            fut = self._loop.run_in_executor(self._executor, self.model.step_many, streams, xs)
            fut.add_done_callback(lambda f: self._finish_tick(lives, items, streams, xs, start, f, refused))
        else:
            self._finish_tick(lives, items, streams, xs, start, None, refused)

    def _finish_tick(self, lives: list[BatchedStream], items: list[tuple[asyncio.Future | None, Any]],
                     streams: list[Stream], xs: np.ndarray, start: float, done: asyncio.Future | None,
                     refused: dict[int, LstmError]) -> None:
        try:
            self._deliver(lives, items, streams, xs, start, done, refused)
        finally:
            self._end_tick()

    def _end_tick(self) -> None:
        self._busy = False
        if self._ready and not self._scheduled and not self._closed:
            if self._burst + 1 < self.max_burst:
                self._burst += 1       # a backlog: the next tick at once, a stream's answers leave together
                self._tick()
            else:                      # then let the loop read and write before going on
                self._scheduled = True
                self._handle = self._loop.call_soon(self._loop_tick)

    def _deliver(self, lives: list[BatchedStream], items: list[tuple[asyncio.Future | None, Any]],
                 streams: list[Stream], xs: np.ndarray, start: float, done: asyncio.Future | None,
                 refused: dict[int, LstmError]) -> None:
        """Step (unless done in the worker thread) and hand every frame of the tick its output or error.
        ``lives[:len(streams)]`` were stepped; the rest hold the frames ``refused`` (index -> error)."""
        loop = self._loop
        k = len(streams)
        errors: list[BaseException | None] | None = None
        try:
            ys = self.model.step_many(streams, xs) if done is None else done.result()
        except LstmError:
            # step_many changed no stream: step them one by one, so only the stream at fault fails
            self.stats.fallbacks += 1
            ys = np.empty((k, self.model.output_size), np.float32)
            errors = [None] * k
            for i, s in enumerate(streams):
                try:
                    s.step(xs[i], out=ys[i])
                except LstmError as e:
                    errors[i] = e
        except Exception as e:  # noqa: BLE001 - out of memory, a closed model...: every frame of the tick fails
            ys = None
            errors = [e] * k
        if refused:
            errors = (errors or [None] * k) + [refused[i] for i in range(k, len(lives))]
        stats = self.stats
        stats.step_seconds += loop.time() - start
        stats.ticks += 1
        stats.frames += k
        if k > stats.max_batch_seen:
            stats.max_batch_seen = k
        for i, live in enumerate(lives):
            fut, tag = items[i]
            err = errors[i] if errors is not None else None
            live._answered()             # first: the callback sees the pending count without this frame
            if fut is None:
                if not live._closed:
                    try:
                        live._on_output(tag, None if err is not None else ys[i], err)
                    except Exception as e:  # noqa: BLE001 - a broken callback must not stop the other streams
                        loop.call_exception_handler({"message": f"on_output of {live!r} raised", "exception": e})
            elif not fut.done():
                if err is not None:
                    fut.set_exception(err)
                else:
                    fut.set_result(ys[i])
            if live._queue and not live._closed:
                self._ready.append(live)   # its next frame goes in the next tick
            else:
                live._scheduled = False
