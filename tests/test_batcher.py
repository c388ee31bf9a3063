"""Live streams: the StreamBatcher (one step_many per tick, order, back-pressure, bad input, close) and the
example TCP server over it (examples/server/server.py), started on 127.0.0.1 by the tests themselves."""
from __future__ import annotations

import asyncio
import importlib.util
import json
import pathlib
import random
import struct
import subprocess
import sys

import numpy as np
import pytest

import lstm_embed
from lstm_embed import (
    DTypeError,
    InputRangeError,
    NonFiniteInputError,
    QueueFullError,
    ShapeError,
    StreamBatcher,
    StreamClosedError,
    wire,
)

from conftest import build_head, build_lstm

ROOT = pathlib.Path(__file__).resolve().parent.parent
TIMEOUT = 20.0  # seconds any one asyncio test may take before it fails instead of hanging


def run(coro):
    """Run a test coroutine with a deadline."""
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


@pytest.fixture(scope="module", params=["float32", "int8-dynamic"])
def live_model(request):
    """Input 6, hidden 16, 2 layers, softmax head of 3, in fp32 and int8-dynamic."""
    lstm, head = build_lstm(6, 16, num_layers=2, seed=5), build_head(16, 3, seed=5)
    calib = np.random.default_rng(1).standard_normal((200, 6)).astype(np.float32)
    data = lstm_embed.convert_torch(lstm, head=head, head_activation="softmax", dtype=request.param,
                                    calibration=None if request.param == "float32" else calib)
    return lstm_embed.Model.from_bytes(data)


@pytest.fixture(scope="module")
def fp32_model():
    return lstm_embed.Model.from_bytes(lstm_embed.convert_torch(build_lstm(6, 16, seed=9)))


def alone(model, frames):
    """Outputs of one fresh stream stepping the frames one by one with Stream.step."""
    s = model.stream()
    return np.stack([s.step(x) for x in frames]) if len(frames) else np.zeros((0, model.output_size), np.float32)


def frames_for(rng, model, streams, steps):
    return rng.standard_normal((streams, steps, model.input_size)).astype(np.float32)


# ---- the batcher ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("offload_min", [None, 1])
def test_outputs_equal_each_stream_alone_under_interleaving(live_model, offload_min):
    """Streams of different lengths, random pauses and queue depths: every output is bit for bit the
    stream's own Stream.step output, in frame order, and frames were really batched."""
    rng = np.random.default_rng(3)
    lengths = [40, 1, 17, 33, 0, 40, 25, 8]
    xs = [frames_for(rng, live_model, 1, n)[0] for n in lengths]

    async def main():
        async with StreamBatcher(live_model, max_pending=4, offload_min=offload_min) as b:
            async def client(i):
                live = b.open(f"c{i}")
                pr = random.Random(i)
                futs, outs = [], []
                for x in xs[i]:
                    if pr.random() < 0.5:
                        outs.append(await live.step(x))          # one at a time
                    else:
                        futs.append((len(outs), await live.put(x)))   # pipelined
                        outs.append(None)
                    if pr.random() < 0.3:
                        await asyncio.sleep(0)
                for k, f in futs:
                    outs[k] = await f
                await live.close()
                return outs
            got = await asyncio.gather(*(client(i) for i in range(len(lengths))))
            return got, b.stats
    got, stats = run(main())
    for i, n in enumerate(lengths):
        want = alone(live_model, xs[i])
        assert len(got[i]) == n
        if n:
            assert np.array_equal(np.stack(got[i]), want), f"stream {i} differs from Stream.step alone"
    assert stats.frames == sum(lengths) and stats.fallbacks == 0
    assert stats.max_batch_seen > 1 and stats.ticks < stats.frames


def test_one_step_many_per_tick_one_frame_per_stream_per_tick(fp32_model):
    """Frames submitted together go in one step_many; a stream with 3 queued frames takes 3 ticks."""
    rng = np.random.default_rng(4)
    xs = frames_for(rng, fp32_model, 5, 3)

    async def main():
        async with StreamBatcher(fp32_model) as b:
            lives = [b.open() for _ in range(5)]
            futs = [lives[0].submit(x) for x in xs[0]] + [lives[i].submit(xs[i, 0]) for i in range(1, 5)]
            await asyncio.gather(*futs)
            first = [await f for f in futs[:3]]
            return b.stats.ticks, b.stats.max_batch_seen, np.stack(first)
    ticks, biggest, first = run(main())
    assert (ticks, biggest) == (3, 5)
    assert np.array_equal(first, alone(fp32_model, xs[0]))


def test_submit_raises_queue_full_and_put_waits(fp32_model):
    """Back-pressure: submit refuses frame max_pending+1 without taking it; put waits for room; a flood
    through put never holds more than max_pending frames and the other streams keep being answered."""
    rng = np.random.default_rng(5)
    xs = frames_for(rng, fp32_model, 2, 300)

    async def main():
        async with StreamBatcher(fp32_model, max_pending=3) as b:
            live = b.open("flooder")
            futs = [live.submit(x) for x in xs[0, :3]]
            with pytest.raises(QueueFullError, match="max_pending=3"):
                live.submit(xs[0, 3])
            assert live.pending == 3
            futs += [await live.put(x) for x in xs[0, 3:]]      # floods through put: waits for room
            peak = live.pending
            polite = b.open("polite")
            polite_out = [await polite.step(x) for x in xs[1, :50]]
            peak = max(peak, live.pending)
            outs = [await f for f in futs]
            return peak, np.stack(outs), np.stack(polite_out), b.stats.refused
    peak, outs, polite_out, refused = run(main())
    assert peak <= 3 and refused == 1
    assert np.array_equal(outs, alone(fp32_model, xs[0]))          # the refused frame was not taken
    assert np.array_equal(polite_out, alone(fp32_model, xs[1, :50]))


def test_flooding_stream_gets_one_row_per_tick(fp32_model):
    """A stream with a full queue is stepped once per tick, like everyone else: it cannot crowd out others."""
    rng = np.random.default_rng(6)
    xs = frames_for(rng, fp32_model, 4, 8)

    async def main():
        async with StreamBatcher(fp32_model, max_pending=8) as b:
            flood, others = b.open(), [b.open() for _ in range(3)]
            ffuts = [flood.submit(x) for x in xs[0]]
            ofuts = [o.submit(xs[i + 1, 0]) for i, o in enumerate(others)]
            await asyncio.gather(*ofuts, *ffuts)
            return b.stats
    stats = run(main())
    # 11 frames in 8 ticks, the largest of 4 rows: the first tick took every stream's first frame, then
    # the flooder's other 7 went one per tick
    assert (stats.frames, stats.ticks, stats.max_batch_seen) == (11, 8, 4)


@pytest.mark.parametrize("bad, error", [
    (np.full(6, np.nan, np.float32), NonFiniteInputError),
    (np.array([0, 1, np.inf, 0, 0, 0], np.float32), NonFiniteInputError),
    (np.zeros(5, np.float32), ShapeError),
    (np.zeros((2, 6), np.float32), ShapeError),
    (np.array([0, 0, 0, 0, 0, 1e30], np.float32), InputRangeError),
    (["a"] * 6, DTypeError),
    (b"\0" * 20, ShapeError),
    (np.array([0, 0, 0, 0, 0, 1e39]), InputRangeError),
])
def test_bad_frame_refused_for_its_stream_only(fp32_model, bad, error):
    """A bad frame raises (shape and type at submit, values from its future), leaves its stream's state
    unchanged (it goes on as if the frame was never sent) and is invisible to the other streams, whose
    frames share its tick."""
    rng = np.random.default_rng(7)
    xs = frames_for(rng, fp32_model, 3, 10)

    async def main():
        async with StreamBatcher(fp32_model) as b:
            lives = [b.open(f"s{i}") for i in range(3)]
            outs = [[], [], []]
            for t in range(10):
                if t == 4:
                    first = lives[0].submit(xs[0, t])
                    with pytest.raises(error) as info:
                        await lives[1].submit(bad)          # in the same tick as stream 0's frame
                    assert "frame" in str(info.value) and lives[1].pending == 0
                    outs[0].append(await first)
                    futs = [None] + [lives[i].submit(xs[i, t]) for i in (1, 2)]
                    for i in (1, 2):
                        outs[i].append(await futs[i])
                    continue
                futs = [lives[i].submit(xs[i, t]) for i in range(3)]
                for i in range(3):
                    outs[i].append(await futs[i])
            return [np.stack(o) for o in outs], b.stats
    outs, stats = run(main())
    for i in range(3):
        assert np.array_equal(outs[i], alone(fp32_model, xs[i]))
    assert stats.refused == 1 and stats.fallbacks == 0


def test_large_but_valid_frame_is_taken(fp32_model):
    """Values up to 2^64 are valid input (only beyond is refused): the quick check must not refuse them."""
    x = np.full(6, 2.0 ** 63, np.float32)

    async def main():
        async with StreamBatcher(fp32_model) as b:
            return await b.open().step(x)
    assert np.array_equal(run(main()), alone(fp32_model, x[None])[0])


def test_send_delivers_outputs_to_on_output_in_order(fp32_model):
    """send(frame, tag): no future; on_output(tag, row, error) is called in frame order, errors included."""
    rng = np.random.default_rng(16)
    xs = frames_for(rng, fp32_model, 2, 12)

    async def main():
        got = {0: [], 1: []}
        async with StreamBatcher(fp32_model, max_pending=12) as b:
            b._bad_rows = lambda xs: np.zeros(0, np.intp)   # let NaN through to the C core
            lives = [b.open(on_output=lambda tag, row, err, i=i: got[i].append((tag, row, err))) for i in range(2)]
            for t in range(12):
                lives[0].send(xs[0, t], t)
                lives[1].send(xs[1, t] if t != 5 else np.full(6, np.nan, np.float32), t)
            await lives[0].close()
            await lives[1].close()
            with pytest.raises(lstm_embed.InvalidArgumentError, match="on_output"):
                b.open().send(xs[0, 0])
        return got
    got = run(main())
    assert [g[0] for g in got[0]] == list(range(12)) == [g[0] for g in got[1]]
    assert np.array_equal(np.stack([g[1] for g in got[0]]), alone(fp32_model, xs[0]))
    assert isinstance(got[1][5][2], NonFiniteInputError) and got[1][5][1] is None
    ok = [g[1] for g in got[1] if g[2] is None]
    assert np.array_equal(np.stack(ok), alone(fp32_model, np.delete(xs[1], 5, axis=0)))


def test_step_many_failure_falls_back_to_the_stream_at_fault(fp32_model):
    """Should a frame pass the front-end check and still fail in C, only its stream gets the error:
    the tick is re-run stream by stream (step_many changed nothing)."""
    rng = np.random.default_rng(8)
    xs = frames_for(rng, fp32_model, 3, 5)

    async def main():
        async with StreamBatcher(fp32_model) as b:
            b._bad_rows = lambda xs: np.zeros(0, np.intp)   # let NaN through to the C core
            lives = [b.open() for _ in range(3)]
            outs = [[], [], []]
            for t in range(5):
                frames = [xs[i, t] for i in range(3)]
                if t == 2:
                    frames[1] = np.full(6, np.nan, np.float32)
                futs = [lives[i].submit(frames[i]) for i in range(3)]
                for i in range(3):
                    try:
                        outs[i].append(await futs[i])
                    except NonFiniteInputError:
                        outs[i].append(None)
            return outs, b.stats.fallbacks
    outs, fallbacks = run(main())
    assert fallbacks == 1 and outs[1][2] is None
    assert np.array_equal(np.stack(outs[0]), alone(fp32_model, xs[0]))
    assert np.array_equal(np.stack(outs[1][:2] + outs[1][3:]), alone(fp32_model, np.delete(xs[1], 2, axis=0)))


def test_abort_drops_pending_frames_and_the_others_go_on(fp32_model):
    """A vanished client: abort cancels its queued frames at once; the other streams are unaffected."""
    rng = np.random.default_rng(9)
    xs = frames_for(rng, fp32_model, 2, 12)

    async def main():
        async with StreamBatcher(fp32_model, max_pending=8) as b:
            gone, stay = b.open("gone"), b.open("stay")
            out = [await stay.step(xs[1, 0])]
            gfuts = [gone.submit(x) for x in xs[0, :8]]
            stay_fut = stay.submit(xs[1, 1])
            gone.abort()                                   # before the tick that would take them
            with pytest.raises(StreamClosedError):
                gone.submit(xs[0, 8])
            out.append(await stay_fut)
            out += [await stay.step(x) for x in xs[1, 2:]]
            return gfuts, np.stack(out), b.streams, gone.pending
    gfuts, out, open_streams, gone_pending = run(main())
    assert all(f.cancelled() for f in gfuts) and open_streams == 1 and gone_pending == 0
    assert np.array_equal(out, alone(fp32_model, xs[1]))


def test_close_answers_pending_then_refuses(fp32_model):
    """close() waits for every pending answer; afterwards submit raises, waiting put()s are released with
    StreamClosedError, and closing the batcher closes its streams and its worker thread."""
    rng = np.random.default_rng(10)
    xs = frames_for(rng, fp32_model, 1, 6)[0]

    async def main():
        b = StreamBatcher(fp32_model, max_pending=2, offload_min=1)
        live = b.open()
        futs = [live.submit(x) for x in xs[:2]]
        waiter = asyncio.ensure_future(live.put(xs[2]))
        await asyncio.sleep(0)
        await live.close()
        assert all(f.done() and not f.cancelled() for f in futs) and live.pending == 0
        with pytest.raises(StreamClosedError):
            await waiter
        with pytest.raises(StreamClosedError):
            live.submit(xs[3])
        other = b.open()
        last = other.submit(xs[0])
        await b.close()
        assert last.done() and b.streams == 0 and b._executor is None
        with pytest.raises(StreamClosedError):
            b.open()
        return np.stack([f.result() for f in futs])
    assert np.array_equal(run(main()), alone(fp32_model, xs[:2]))


# ---- the example server over TCP ------------------------------------------------------------------------

def _load_server_module():
    spec = importlib.util.spec_from_file_location("live_server", ROOT / "examples" / "server" / "server.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


live_server = _load_server_module()


class Client:
    """A test client of the wire protocol."""

    def __init__(self, reader, writer):
        self.r, self.w = reader, writer
        self.msgs = wire.MessageReader()

    @classmethod
    async def connect(cls, port):
        c = cls(*await asyncio.open_connection("127.0.0.1", port))
        kind, body = await c.recv()
        assert kind == wire.HELLO
        c.input_size, c.output_size, c.max_pending, c.dtype = wire.unpack_hello(body)
        return c

    def send_frame(self, seq, x):
        self.w.write(wire.pack_frame(seq, np.asarray(x, "<f4").tobytes()))

    async def recv(self):
        """The next message, or (None, b"") at EOF."""
        while True:
            m = self.msgs.next()
            if m is not None:
                return m
            data = await self.r.read(65536)
            if not data:
                return None, b""
            self.msgs.feed(data)

    async def answers(self, n):
        """The next n messages as a list of ("O", seq, row) / ("X", seq, fatal, message) / ("E",)."""
        out = []
        for _ in range(n):
            kind, body = await self.recv()
            if kind == wire.OUTPUT:
                out.append(("O", int.from_bytes(body[:4], "little"), np.frombuffer(body, "<f4", offset=4)))
            elif kind == wire.ERROR:
                out.append(("X", *wire.unpack_error(body)))
            elif kind == wire.END:
                out.append(("E",))
            else:
                out.append((kind,))
                break
        return out

    def close(self):
        self.w.close()


async def with_server(model, body, **kw):
    """Start a LiveServer on 127.0.0.1 (a free port), run body(server, port), always stop the server."""
    server = live_server.LiveServer(model, **kw)
    _, port = await server.start("127.0.0.1", 0)
    try:
        return await body(server, port)
    finally:
        await server.close()


@pytest.mark.parametrize("mode", ["batch", "naive"])
def test_server_outputs_equal_each_stream_alone(live_model, mode):
    """Several TCP clients interleaved: every answer is in order and equals Stream.step alone; END closes."""
    rng = np.random.default_rng(11)
    xs = frames_for(rng, live_model, 6, 25)

    async def body(server, port):
        clients = [await Client.connect(port) for _ in range(6)]
        assert clients[0].input_size == live_model.input_size and clients[0].dtype == live_model.dtype

        async def one(i, c):
            for t in range(25):
                c.send_frame(t, xs[i, t])
                if t % 5 == 4:
                    await asyncio.sleep(0.001)
            c.w.write(wire.pack(wire.END))
            got = await c.answers(26)
            c.close()
            return got
        return await asyncio.gather(*(one(i, c) for i, c in enumerate(clients)))
    results = run(with_server(live_model, body, mode=mode))
    for i, got in enumerate(results):
        assert [g[0] for g in got] == ["O"] * 25 + ["E"]
        assert [g[1] for g in got[:25]] == list(range(25))
        assert np.array_equal(np.stack([g[2] for g in got[:25]]), alone(live_model, xs[i]))


def test_server_refuses_bad_frames_for_that_stream_only(fp32_model):
    """Wrong size and NaN get a non-fatal error for that frame; that stream goes on unchanged, and a
    second client never notices."""
    rng = np.random.default_rng(12)
    xs = frames_for(rng, fp32_model, 2, 6)

    async def body(server, port):
        bad, good = await Client.connect(port), await Client.connect(port)
        for t in range(6):
            if t == 2:
                bad.send_frame(100, np.zeros(4))              # wrong size
                bad.send_frame(101, np.full(6, np.nan))       # NaN
            bad.send_frame(t, xs[0, t])
            good.send_frame(t, xs[1, t])
        for c in (bad, good):
            c.w.write(wire.pack(wire.END))
        return await bad.answers(9), await good.answers(7)
    got_bad, got_good = run(with_server(fp32_model, body))
    errors = [g for g in got_bad if g[0] == "X"]
    assert [(e[1], e[2]) for e in errors] == [(100, False), (101, False)]
    assert errors[0][3].startswith("ShapeError") and errors[1][3].startswith("NonFiniteInputError")
    outs = [g for g in got_bad if g[0] == "O"]
    assert np.array_equal(np.stack([g[2] for g in outs]), alone(fp32_model, xs[0]))
    assert np.array_equal(np.stack([g[2] for g in got_good[:6]]), alone(fp32_model, xs[1]))


def test_server_client_vanishing_mid_stream(fp32_model):
    """A client that drops its connection with frames in flight is cleaned up; the others are answered."""
    rng = np.random.default_rng(13)
    xs = frames_for(rng, fp32_model, 2, 40)

    async def body(server, port):
        gone, stay = await Client.connect(port), await Client.connect(port)
        for t in range(40):
            gone.send_frame(t, xs[0, t])
        gone.w.transport.abort()                          # vanishes without reading or ending
        out = []
        for t in range(40):
            stay.send_frame(t, xs[1, t])
            out += await stay.answers(1)
        for _ in range(100):
            if len(server.connections) == 1:
                break
            await asyncio.sleep(0.01)
        return out, len(server.connections), server.batcher.streams
    out, conns, streams = run(with_server(fp32_model, body))
    assert (conns, streams) == (1, 1)
    assert np.array_equal(np.stack([g[2] for g in out]), alone(fp32_model, xs[1]))


def test_server_flood_wait_is_bounded_and_answers_everything(fp32_model):
    """--flood wait: a client that sends 300 frames at once is read no faster than it is answered (at
    most max_pending in the batcher), gets every answer in order, and a polite client is not delayed."""
    rng = np.random.default_rng(14)
    xs = frames_for(rng, fp32_model, 2, 300)

    async def body(server, port):
        flood, polite = await Client.connect(port), await Client.connect(port)
        peak = 0
        for t in range(300):
            flood.send_frame(t, xs[0, t])
        polite_out = []
        for t in range(20):
            polite.send_frame(t, xs[1, t])
            polite_out += await polite.answers(1)
            peak = max(peak, max(c.live.pending for c in server.connections))
        got = await flood.answers(300)
        return peak, got, polite_out
    peak, got, polite_out = run(with_server(fp32_model, body, max_pending=4, flood="wait"))
    assert peak <= 4
    assert [g[1] for g in got] == list(range(300))
    assert np.array_equal(np.stack([g[2] for g in got]), alone(fp32_model, xs[0]))
    assert np.array_equal(np.stack([g[2] for g in polite_out]), alone(fp32_model, xs[1, :20]))


def test_server_flood_refuse_closes_the_flooder_only(fp32_model):
    """--flood refuse: frames beyond max_pending get a fatal QueueFullError and that connection is closed."""
    rng = np.random.default_rng(15)
    xs = frames_for(rng, fp32_model, 2, 200)

    async def body(server, port):
        flood, polite = await Client.connect(port), await Client.connect(port)
        flood.w.write(b"".join(wire.pack_frame(t, xs[0, t].tobytes()) for t in range(200)))
        msgs = []
        while True:
            m = await flood.answers(1)
            if m[0][0] != "O":
                msgs += m
                break
        eof = await flood.recv()
        polite_out = []
        for t in range(10):
            polite.send_frame(t, xs[1, t])
            polite_out += await polite.answers(1)
        return msgs, eof, polite_out
    msgs, eof, polite_out = run(with_server(fp32_model, body, max_pending=2, flood="refuse"))
    assert msgs[0][0] == "X" and msgs[0][2] is True and msgs[0][3].startswith("QueueFullError")
    assert eof == (None, b"")
    assert np.array_equal(np.stack([g[2] for g in polite_out]), alone(fp32_model, xs[1, :10]))


def test_server_half_close_answers_every_frame_then_ends(fp32_model):
    """A client that sends its frames and half-closes (EOF) gets every answer, then END and the close,
    also when the frames wait behind back-pressure."""
    rng = np.random.default_rng(17)
    xs = frames_for(rng, fp32_model, 1, 60)[0]

    async def body(server, port):
        c = await Client.connect(port)
        for t in range(60):
            c.send_frame(t, xs[t])
        c.w.write_eof()
        got = await c.answers(61)
        return got, await c.recv()
    got, eof = run(with_server(fp32_model, body, max_pending=2))
    assert [g[0] for g in got] == ["O"] * 60 + ["E"] and eof == (None, b"")
    assert np.array_equal(np.stack([g[2] for g in got[:60]]), alone(fp32_model, xs))


def test_server_malformed_message_is_fatal_for_that_connection(fp32_model):
    async def body(server, port):
        bad, good = await Client.connect(port), await Client.connect(port)
        bad.w.write(struct.pack("<I", 1 << 30) + b"F")     # absurd length
        got = await bad.answers(1)
        eof = await bad.recv()
        good.send_frame(0, np.zeros(6))
        return got, eof, await good.answers(1)
    got, eof, good = run(with_server(fp32_model, body))
    assert got[0][0] == "X" and got[0][2] is True and "ProtocolError" in got[0][3]
    assert eof == (None, b"") and good[0][0] == "O"
    assert np.array_equal(good[0][2], alone(fp32_model, np.zeros((1, 6), np.float32))[0])


def test_loadgen_quick_run_checks_every_answer(tmp_path):
    """tools/loadgen.py in its own process against the server in another: every frame answered, 0 mismatches."""
    out = tmp_path / "rows.json"
    subprocess.run([sys.executable, str(ROOT / "tools" / "loadgen.py"), "--streams", "8", "--seconds", "0.5",
                    "--dtypes", "int8-dynamic", "--modes", "batch", "--hidden", "16", "--json", str(out)],
                   check=True, timeout=120, capture_output=True, cwd=ROOT)
    (row,) = json.loads(out.read_text())
    assert row["frames_sent"] == 8 * 16 and row["dropped"] == 0 and row["mismatches"] == 0 and row["errors"] == 0
