"""Load generator for the live-stream server (examples/server/server.py), on loopback only.

Starts the server in its own process (127.0.0.1, a free port), opens one TCP connection per stream,
sends every stream one frame per hop in real time (streams spread evenly over the hop), then checks that
every frame was answered and that each stream's outputs equal the same frames stepped alone with
``Stream.step``, bit for bit. Reports per-frame latency (p50, p99, max: from writing the frame to
reading its answer, both in this process), frames dropped, mismatches, the CPU time of both processes
and the time the server spent in the LSTM. Bounded: ``--streams`` connections for ``--seconds``.

    python tools/loadgen.py --streams 500 --seconds 60                 # batch vs naive, int8-dynamic and fp32
    python tools/loadgen.py --streams 100 --seconds 5 --dtypes float32 --modes batch    # a quick check
    python tools/loadgen.py --find-max 250,500,1000,1500 --seconds 10  # largest count held in real time

A stream count is "held in real time" when every frame is answered, outputs match, and p99 latency is
under one hop. The model is a seeded ``torch.nn.LSTM(input, hidden)`` with a softmax ``Linear`` head,
converted with lstm_embed (needs torch), unless ``--model`` names a model file.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
if any((ROOT / "lstm_embed").glob("_lstm.*.so")) or any((ROOT / "lstm_embed").glob("_lstm.*.pyd")):
    # a source tree built in place (python setup.py build_ext --inplace); else the installed package
    sys.path.insert(0, str(ROOT))

import lstm_embed  # noqa: E402
from lstm_embed import wire  # noqa: E402

SERVER = ROOT / "examples" / "server" / "server.py"
BANK = 1024       # distinct frames; stream s sends bank[(s * 37 + t) % BANK] at step t
SLOTS = 32        # the hop is split into this many send slots; stream s sends in slot s % SLOTS
HOST = "127.0.0.1"


# ---- model and inputs ---------------------------------------------------------------------------------

def make_model(path: pathlib.Path, dtype: str, input_size: int, hidden: int, output: int, bank: np.ndarray) -> None:
    """A seeded LSTM + softmax head converted to ``dtype`` (calibrated on the frame bank), saved at path."""
    import torch

    torch.manual_seed(12)
    lstm = torch.nn.LSTM(input_size, hidden).eval()
    head = torch.nn.Linear(hidden, output).eval()
    data = lstm_embed.convert_torch(lstm, head=head, head_activation="softmax", dtype=dtype,
                                    calibration=None if dtype == "float32" else bank)
    path.write_bytes(data)


def frame_bank(input_size: int) -> np.ndarray:
    """BANK frames of input_size float32 values (features of a plausible scale)."""
    return np.random.default_rng(7).standard_normal((BANK, input_size)).astype(np.float32)


def frame_index(s: int, t: int) -> int:
    return (s * 37 + t) % BANK


# ---- server process -----------------------------------------------------------------------------------

class ServerProcess:
    """examples/server/server.py in a child process on 127.0.0.1; ``port`` once started."""

    def __init__(self, model_path: pathlib.Path, mode: str, extra: list[str], timeout: float = 30.0) -> None:
        cmd = [sys.executable, str(SERVER), "--model", str(model_path), "--mode", mode, "--host", HOST,
               "--port", "0", *extra]
        home = os.path.dirname(os.path.dirname(os.path.abspath(lstm_embed.__file__)))  # the lstm_embed we run
        env = dict(os.environ, PYTHONPATH=home + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("listening on") or not line:
                break
        m = re.match(r"listening on ([\d.]+):(\d+)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"server did not start: {line!r} {self.proc.stderr.read()[-2000:]}")
        self.port = int(m.group(2))
        self.banner = line.strip()

    def stop(self, timeout: float = 30.0) -> dict[str, Any]:
        """SIGTERM, wait, return the statistics it printed."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        for line in reversed(out.splitlines()):
            if line.startswith("{"):
                return json.loads(line)
        raise RuntimeError(f"server printed no statistics; stderr: {err[-2000:]}")


# ---- clients ------------------------------------------------------------------------------------------

class Client(asyncio.Protocol):
    """One stream: records when each frame was sent and answered, and the answers."""

    def __init__(self, index: int, frames: int, output_size: int) -> None:
        self.index = index
        self.sent = np.full(frames, np.nan)
        self.recv = np.full(frames, np.nan)
        self.outs = np.zeros((frames, output_size), np.float32)
        self.reader = wire.MessageReader()
        self.errors: list[str] = []
        self.hello = asyncio.get_running_loop().create_future()
        self.ended = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.stats: asyncio.Future | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.reader.feed(data)
        for kind, body in self.reader.messages():
            if kind == wire.OUTPUT:
                seq = int.from_bytes(body[:4], "little")
                self.recv[seq] = now
                self.outs[seq] = np.frombuffer(body, "<f4", offset=4)
            elif kind == wire.HELLO and not self.hello.done():
                self.hello.set_result(wire.unpack_hello(body))
            elif kind == wire.ERROR:
                seq, fatal, msg = wire.unpack_error(body)
                self.errors.append(f"{'fatal ' if fatal else ''}seq {seq}: {msg}")
            elif kind == wire.END and not self.ended.done():
                self.ended.set_result(True)
            elif kind == wire.STATS and self.stats is not None and not self.stats.done():
                self.stats.set_result(json.loads(body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        for f in (self.hello, self.ended):
            if not f.done():
                f.set_result(None)


async def drive(port: int, streams: int, seconds: float, hop: float, bank: np.ndarray,
                output_size: int) -> dict[str, Any]:
    """Connect ``streams`` clients, stream for ``seconds``, end every stream; returns raw results."""
    loop = asyncio.get_running_loop()
    frames = max(1, int(round(seconds / hop)))
    payloads = [bank[j].astype("<f4").tobytes() for j in range(BANK)]
    clients: list[Client] = []
    for i in range(streams):
        _, c = await asyncio.wait_for(loop.create_connection(lambda i=i: Client(i, frames, output_size), HOST, port),
                                      timeout=30)
        clients.append(c)
    await asyncio.wait_for(asyncio.gather(*(c.hello for c in clients)), timeout=30)
    by_slot = [clients[s::SLOTS] for s in range(SLOTS)]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    t0 = time.perf_counter() + 0.05
    lag = np.zeros(frames * SLOTS)
    k = 0
    for t in range(frames):
        for slot in range(SLOTS):
            target = t0 + t * hop + slot * hop / SLOTS
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.perf_counter()
            lag[k] = now - target
            k += 1
            for c in by_slot[slot]:
                if not c.lost:
                    c.transport.write(wire.pack_frame(t, payloads[frame_index(c.index, t)]))
                    c.sent[t] = time.perf_counter()
    # statistics from the server while it still holds every stream, then end each stream
    stats_client = clients[0]
    stats_client.stats = loop.create_future()
    if not stats_client.lost:
        stats_client.transport.write(wire.pack(wire.STATS))
    for c in clients:
        if not c.lost:
            c.transport.write(wire.pack(wire.END))
    try:
        server_stats = await asyncio.wait_for(stats_client.stats, timeout=30)
    except asyncio.TimeoutError:
        server_stats = {}
    await asyncio.wait([c.ended for c in clients], timeout=max(30.0, seconds))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    for c in clients:
        if c.transport is not None:
            c.transport.close()
    return {"clients": clients, "frames": frames, "server": server_stats, "gen_cpu_s": cpu, "gen_wall_s": wall,
            "send_lag": lag}


def verify(model: lstm_embed.Model, clients: list[Client], bank: np.ndarray) -> int:
    """Frames whose answer differs (bitwise) from the stream stepped alone with Stream.step."""
    bad = 0
    out = np.empty(model.output_size, np.float32)
    for c in clients:
        answered = ~np.isnan(c.recv)
        n = int(np.argmin(answered)) if not answered.all() else len(answered)  # answers form a prefix
        s = model.stream()
        for t in range(n):
            s.step(bank[frame_index(c.index, t)], out=out)
            if not np.array_equal(out, c.outs[t]):
                bad += 1
        bad += int(answered[n:].sum())  # an answer after a gap would be out of order
    return bad


class _NullTransport(asyncio.Transport):
    """Stands in for a socket in ``breakdown``: writes are counted and dropped."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += 1

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 0) if name == "peername" else default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False


def breakdown(model: lstm_embed.Model, mode: str, streams: int, hops: int, bank: np.ndarray) -> dict[str, float]:
    """CPU per frame of the server's own code without sockets: the server's connection objects fed
    messages directly (parse, check, step, encode the answer), transports that drop the bytes. Returns
    microseconds per frame: total, and the LSTM call alone (``lstm_cpu_us`` at the mean batch seen)."""
    sys.path.insert(0, str(SERVER.parent))
    import server as server_module

    async def main() -> dict[str, float]:
        srv = server_module.LiveServer(model, mode=mode)
        await srv.start(HOST, 0)
        conns = []
        for _ in range(streams):
            c = server_module._Connection(srv)
            c.connection_made(_NullTransport())
            conns.append(c)
        msgs = [[wire.pack_frame(t, bank[frame_index(i, t)].tobytes()) for t in range(hops)] for i in range(streams)]
        await asyncio.sleep(0)
        cpu0 = time.process_time()
        for t in range(hops):
            for i, c in enumerate(conns):
                c.data_received(msgs[i][t])
            while srv.counts["outputs"] < (t + 1) * streams:
                await asyncio.sleep(0)
        cpu = time.process_time() - cpu0
        st = srv.stats()
        await srv.close()
        batch = round(st["batcher"]["frames"] / st["batcher"]["ticks"]) if "batcher" in st else 1
        return {"python_and_lstm_us": cpu / (hops * streams) * 1e6, "lstm_us": lstm_cpu_us(model, batch, bank)}
    return asyncio.run(main())


def lstm_cpu_us(model: lstm_embed.Model, batch: int, bank: np.ndarray, frames: int = 20000) -> float:
    """CPU microseconds per frame of the LSTM call alone: ``step_many`` over ``batch`` streams, or
    ``Stream.step`` when batch is 1 (CPU time, so other processes on the machine do not inflate it)."""
    streams = [model.stream() for _ in range(batch)]
    xs = np.ascontiguousarray(bank[np.arange(batch) % BANK])
    out = np.empty((batch, model.output_size), np.float32)
    rounds = max(1, frames // batch)
    cpu0 = time.process_time()
    if batch == 1:
        s, x, o = streams[0], xs[0], out[0]
        for r in range(rounds):
            s.step(x, out=o)
    else:
        for r in range(rounds):
            model.step_many(streams, xs, out=out)
    return (time.process_time() - cpu0) / (rounds * batch) * 1e6


def run_one(model_path: pathlib.Path, model: lstm_embed.Model, mode: str, streams: int, seconds: float,
            hop: float, bank: np.ndarray, server_args: list[str], port: int = 0) -> dict[str, Any]:
    """One measurement: start a server (or use the one on 127.0.0.1:port), drive it, stop it, verify.
    Returns a row of the results table."""
    if port:
        raw = asyncio.run(drive(port, streams, seconds, hop, bank, model.output_size))
        final = {}
    else:
        server = ServerProcess(model_path, mode, server_args)
        try:
            raw = asyncio.run(drive(server.port, streams, seconds, hop, bank, model.output_size))
        finally:
            final = server.stop()
    clients = raw["clients"]
    sent = np.concatenate([c.sent for c in clients])
    recv = np.concatenate([c.recv for c in clients])
    ok = ~np.isnan(recv)
    lat_ms = (recv[ok] - sent[ok]) * 1e3
    n_sent = int((~np.isnan(sent)).sum())
    st = raw["server"] or final
    frames_srv = max(1, st.get("outputs", 0))
    row = {
        "dtype": model.dtype, "mode": mode, "streams": streams, "seconds": seconds, "hop_ms": hop * 1e3,
        "frames_sent": n_sent, "answered": int(ok.sum()), "dropped": n_sent - int(ok.sum()),
        "errors": sum(len(c.errors) for c in clients), "mismatches": verify(model, clients, bank),
        "p50_ms": float(np.percentile(lat_ms, 50)) if lat_ms.size else float("nan"),
        "p99_ms": float(np.percentile(lat_ms, 99)) if lat_ms.size else float("nan"),
        "max_ms": float(lat_ms.max()) if lat_ms.size else float("nan"),
        "send_lag_p99_ms": float(np.percentile(raw["send_lag"], 99) * 1e3),
        "gen_cpu_frac": raw["gen_cpu_s"] / raw["gen_wall_s"],
        "server_cpu_frac": st.get("process_cpu_s", float("nan")) / max(st.get("wall_s", 1.0), 1e-9),
        "server_cpu_us_per_frame": st.get("process_cpu_s", float("nan")) / frames_srv * 1e6,
        "lstm_us_per_frame": st.get("lstm_s", float("nan")) / frames_srv * 1e6,
        "mean_batch": (st["batcher"]["frames"] / max(1, st["batcher"]["ticks"])) if "batcher" in st else 1.0,
        "first_errors": [e for c in clients for e in c.errors][:3],
        "load_avg": os.getloadavg()[0],
    }
    nosock = breakdown(model, mode, streams, 50, bank)
    row["nosocket_cpu_us_per_frame"] = nosock["python_and_lstm_us"]
    row["nosocket_lstm_us_per_frame"] = nosock["lstm_us"]
    row["real_time"] = bool(row["dropped"] == 0 and row["mismatches"] == 0 and row["errors"] == 0
                            and row["p99_ms"] < row["hop_ms"])
    return row


COLUMNS = ["dtype", "mode", "streams", "frames_sent", "dropped", "mismatches", "p50_ms", "p99_ms", "max_ms",
           "mean_batch", "server_cpu_us_per_frame", "nosocket_cpu_us_per_frame", "nosocket_lstm_us_per_frame",
           "gen_cpu_frac", "send_lag_p99_ms",
           "load_avg", "real_time"]


def print_row(row: dict[str, Any], header: bool) -> None:
    """One markdown table row (with the header first when asked)."""
    if header:
        print("| " + " | ".join(COLUMNS) + " |")
        print("|" + "---|" * len(COLUMNS))
    cells = [f"{row[c]:.3g}" if isinstance(row[c], float) else str(row[c]) for c in COLUMNS]
    print("| " + " | ".join(cells) + " |", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--streams", type=int, default=500, help="concurrent streams (connections), default 500")
    p.add_argument("--seconds", type=float, default=10.0, help="streaming time per run (max 60), default 10")
    p.add_argument("--hop-ms", type=float, default=32.0, help="time between a stream's frames, default 32")
    p.add_argument("--dtypes", default="int8-dynamic,float32", help="comma list, default int8-dynamic,float32")
    p.add_argument("--modes", default="batch,naive", help="server modes, comma list, default batch,naive")
    p.add_argument("--input", type=int, default=40, help="input_size (features per frame), default 40")
    p.add_argument("--hidden", type=int, default=64, help="hidden size, default 64")
    p.add_argument("--output", type=int, default=4, help="head outputs, default 4")
    p.add_argument("--model", help="use this model file instead of a seeded one (--dtypes is then ignored)")
    p.add_argument("--find-max", help="comma list of stream counts to try (ascending); reports the largest "
                                      "held in real time per dtype and mode (stops after two misses in a row: "
                                      "one can be a hiccup of a loaded machine)")
    p.add_argument("--server-arg", action="append", default=[],
                   help="passed to the server, e.g. --server-arg=--max-delay=0.002 (repeatable)")
    p.add_argument("--port", type=int, default=0,
                   help="drive a server already running on 127.0.0.1:PORT (with --model, the model it serves, and "
                        "--modes naming its mode) instead of starting one")
    p.add_argument("--json", help="also write every row to this JSON file")
    args = p.parse_args(argv)
    if not 0 < args.seconds <= 60:
        p.error("--seconds must be in (0, 60]")
    if not 0 < args.streams <= 5000:
        p.error("--streams must be in 1..5000")
    if args.port and not args.model:
        p.error("--port needs --model: the model file the server serves (to check its answers)")
    hop = args.hop_ms / 1e3
    bank = frame_bank(args.input)
    counts = [int(x) for x in args.find_max.split(",")] if args.find_max else [args.streams]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.model:
            models = [(pathlib.Path(args.model), lstm_embed.Model.load(args.model))]
            bank = frame_bank(models[0][1].input_size)
        else:
            models = []
            for dtype in args.dtypes.split(","):
                path = pathlib.Path(tmp) / f"loadgen_{dtype}.lstm"
                make_model(path, dtype, args.input, args.hidden, args.output, bank)
                models.append((path, lstm_embed.Model.load(path)))
        print(f"# loadgen: {len(counts)} count(s) x {len(models)} model(s) x modes {args.modes}; "
              f"{args.seconds:g} s each, hop {args.hop_ms:g} ms; load average {os.getloadavg()}; "
              f"{os.cpu_count()} CPUs", flush=True)
        header = True
        best: dict[tuple[str, str], int] = {}
        for path, model in models:
            for mode in args.modes.split(","):
                failures = 0
                for n in counts:
                    row = run_one(path, model, mode, n, args.seconds, hop, bank, args.server_arg, args.port)
                    rows.append(row)
                    print_row(row, header)
                    header = False
                    if row["first_errors"]:
                        print(f"#   errors: {row['first_errors']}", flush=True)
                    if row["real_time"]:
                        best[(model.dtype, mode)] = n
                        failures = 0
                    elif args.find_max:
                        failures += 1
                        if failures == 2:
                            break  # two counts in a row missed real time: larger ones will not hold
        if args.find_max:
            for (dtype, mode), n in best.items():
                print(f"# largest stream count held in real time (p99 < {args.hop_ms:g} ms): {dtype} {mode}: {n}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
