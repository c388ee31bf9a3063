"""Batch scoring on Dask (lstm_embed.score, `lstm-embed score`): outputs equal in-process ``Stream.run``
bit for bit through a LocalCluster and through a scheduler and workers started with the `dask` command;
a worker killed mid-run loses and duplicates nothing; bad inputs are reported and skipped; reruns resume.

Every cluster here listens on 127.0.0.1 only, is started by this file and stopped by it; every wait has a
timeout. The whole file takes ~30-60 s on 2 cores (three clusters start); it runs in the default suite.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch

import lstm_embed
from lstm_embed.errors import LstmError, MissingDependencyError, ScoreError

distributed = pytest.importorskip("distributed", reason='needs the dask extra: pip install "lstm-embed[dask]"')

from lstm_embed.score import LOOPBACK_HTTP, MANIFEST, models_opened, score  # noqa: E402

torch.set_num_threads(1)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(lstm_embed.__file__)))
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
START_TIMEOUT = 60  # seconds for a cluster to come up on a loaded 2-core machine
RUN_TIMEOUT = 120


def make_model(input_size: int, hidden: int, *, layers: int = 1, head: int = 0, dtype: str = "float32",
               seed: int = 0) -> bytes:
    """Model-file bytes of a seeded nn.LSTM (+ Linear head)."""
    torch.manual_seed(seed)
    lstm = torch.nn.LSTM(input_size, hidden, num_layers=layers).eval()
    linear = torch.nn.Linear(hidden, head).eval() if head else None
    calibration = np.random.default_rng(seed).standard_normal((200, input_size)).astype(np.float32)
    return lstm_embed.convert_torch(lstm, head=linear, head_activation="tanh" if head else None, dtype=dtype,
                                    calibration=calibration if dtype != "float32" else None)


def expected(model_bytes: bytes, xs: np.ndarray, last: bool = False) -> np.ndarray:
    """In-process reference: a fresh stream and one ``run`` per sequence, independent of lstm_embed.score."""
    model = lstm_embed.Model.from_bytes(model_bytes)
    seqs = xs if xs.ndim == 3 else xs[None]
    outs = [model.stream().run(x) for x in seqs]
    outs = np.stack([y[-1] for y in outs] if last else outs)
    return outs if xs.ndim == 3 else outs[0]


def write_inputs(folder, input_size: int, seed: int = 0) -> dict[str, dict[str, np.ndarray] | np.ndarray]:
    """A mixed archive: single sequences (float32 and float64, odd lengths), a batch, an .npz of both."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays: dict = {f"seq{i}.npy": rng.standard_normal((17 + 29 * i, input_size)).astype(np.float32)
                    for i in range(4)}
    arrays["seq64.npy"] = rng.standard_normal((31, input_size))  # float64 in
    arrays["batch.npy"] = rng.standard_normal((5, 40, input_size)).astype(np.float32)
    arrays["square.npy"] = rng.standard_normal((4, 4, input_size)).astype(np.float32)  # N == T
    arrays["mixed.npz"] = {"one": rng.standard_normal((23, input_size)).astype(np.float32),
                           "many": rng.standard_normal((3, 11, input_size)).astype(np.float32)}
    for name, value in arrays.items():
        if name.endswith(".npz"):
            np.savez(folder / name, **value)
        else:
            np.save(folder / name, value)
    return arrays


def assert_outputs(out, model_bytes: bytes, arrays: dict, last: bool = False) -> None:
    """Every input has its output in ``out``, equal to the in-process reference bit for bit, and the folder
    holds nothing else (no duplicate, no temporary file) but the manifest."""
    assert sorted(os.listdir(out)) == sorted([*arrays, MANIFEST])
    for name, value in arrays.items():
        if name.endswith(".npz"):
            with np.load(out / name) as got:
                assert sorted(got.files) == sorted(value)
                for key, xs in value.items():
                    want = expected(model_bytes, xs, last)
                    assert got[key].dtype == np.float32 and np.array_equal(got[key], want), (name, key)
        else:
            got, want = np.load(out / name), expected(model_bytes, value, last)
            assert got.dtype == np.float32 and got.shape == want.shape, (name, got.shape, want.shape)
            assert np.array_equal(got, want), name


def cli(*args, cwd, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess:
    """``python -m lstm_embed ARGS``; no traceback allowed on stderr."""
    proc = subprocess.run([sys.executable, "-m", "lstm_embed", *map(str, args)], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def stop(proc: subprocess.Popen) -> None:
    """Terminate a process this file started; kill it if it does not exit within 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    """fp32, 2 layers, input 6, hidden 24, tanh head of 3."""
    return make_model(6, 24, layers=2, head=3)


@pytest.fixture(scope="module")
def local_client(dask_cluster):
    """A client of 2 worker processes (1 thread each) on 127.0.0.1: the module's `dask scheduler` and
    `dask worker` subprocesses. (A distributed.LocalCluster spawned from inside the long pytest process lost
    its workers after some earlier test modules had run; the CLI test keeps the LocalCluster path covered.)"""
    return dask_cluster[1]


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """`dask scheduler` and two `dask worker --no-nanny` processes (1 thread each) on 127.0.0.1, started
    as subprocesses; yields (address, client, {worker pid: Popen}); everything is stopped afterwards."""
    folder = tmp_path_factory.mktemp("dask")
    info = folder / "scheduler.json"
    procs: list[subprocess.Popen] = []
    client = None
    try:
        log = open(folder / "scheduler.log", "w")
        procs.append(subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1",
                                       "--port", "0", "--no-dashboard", "--dashboard-address", "127.0.0.1:0",
                                       "--scheduler-file", str(info)],
                                      cwd=folder, env=ENV, stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + START_TIMEOUT
        while not (info.exists() and info.stat().st_size):
            assert procs[0].poll() is None, (folder / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "the dask scheduler did not start"
            time.sleep(0.1)
        address = json.loads(info.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:"), address
        workers = {}
        for i in range(2):
            wlog = open(folder / f"worker{i}.log", "w")
            proc = subprocess.Popen([sys.executable, "-m", "dask", "worker", address, "--host", "127.0.0.1",
                                     "--nthreads", "1", "--no-nanny", "--no-dashboard", "--name", f"w{i}"],
                                    cwd=folder, env=ENV, stdout=wlog, stderr=subprocess.STDOUT)
            procs.append(proc)
            workers[proc.pid] = proc
        client = distributed.Client(address, timeout=START_TIMEOUT)
        client.wait_for_workers(2, timeout=START_TIMEOUT)
        assert set(client.run(os.getpid).values()) == set(workers)  # no nanny: the Popen is the worker
        yield address, client, workers
    finally:
        if client is not None:
            client.close()
        for proc in reversed(procs):
            stop(proc)


# --- without a cluster ---------------------------------------------------------------------------------------

def test_core_imports_without_dask(tmp_path):
    """numpy is enough to import the package, the scoring module and the CLI; scoring then says what to
    install (MissingDependencyError is an LstmError and an ImportError)."""
    code = ("import sys; sys.modules['dask'] = sys.modules['distributed'] = None\n"
            "import lstm_embed, lstm_embed.cli, lstm_embed.score as s\n"
            "try:\n    s._distributed()\nexcept lstm_embed.LstmError as e:\n"
            "    assert isinstance(e, ImportError), type(e); print(e)\n")
    # cwd outside the source tree: `python -c` puts the cwd first on sys.path, and a source checkout's
    # lstm_embed (no compiled extension) would shadow the installed package
    proc = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert 'pip install "lstm-embed[dask]"' in proc.stdout


def test_missing_dask_is_reported_before_any_work(tmp_path, model_bytes, monkeypatch):
    np.save(tmp_path / "a.npy", np.zeros((3, 6), np.float32))
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "lstm-embed\[dask\]"'):
        score(model_bytes, [tmp_path / "a.npy"], tmp_path / "out")
    assert not (tmp_path / "out" / "a.npy").exists()


def test_out_folder_of_another_model_or_mode_is_refused(tmp_path, model_bytes):
    """The manifest ties OUT to one model and one mode, so a rerun never mixes outputs (no cluster needed:
    nothing is left to score when every input is missing)."""
    report = score(model_bytes, [tmp_path / "missing.npy"], tmp_path / "out")
    assert report.failed == {str(tmp_path / "missing.npy"): "no such file or folder"} and report.workers == 0
    with pytest.raises(ScoreError, match="another scoring run.*last"):
        score(model_bytes, [], tmp_path / "out", last=True)
    with pytest.raises(ScoreError, match="another scoring run.*model_fingerprint"):
        score(make_model(6, 24, layers=2, head=3, seed=1), [], tmp_path / "out")


def test_colliding_names_and_in_place_outputs_are_refused(tmp_path, model_bytes):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        np.save(tmp_path / sub / "x.npy", np.zeros((2, 6), np.float32))
    with pytest.raises(ScoreError, match="would both write"):
        score(model_bytes, [tmp_path / "a", tmp_path / "b"], tmp_path / "out")
    with pytest.raises(ScoreError, match="holds the input"):
        score(model_bytes, [tmp_path / "a"], tmp_path / "a")


# --- LocalCluster ------------------------------------------------------------------------------------------

def test_cli_local_cluster_equals_in_process(tmp_path, model_bytes):
    """The default path: no --scheduler starts a LocalCluster (here 2 worker processes) for the run. Every
    output equals in-process Stream.run bit for bit; a corrupt input is named on stderr, exit 1."""
    (tmp_path / "model.lstm").write_bytes(model_bytes)
    arrays = write_inputs(tmp_path / "in", 6)
    np.save(tmp_path / "in" / "cut.npy", np.ones((50, 6), np.float32))
    data = (tmp_path / "in" / "cut.npy").read_bytes()
    (tmp_path / "in" / "cut.npy").write_bytes(data[:len(data) // 2])  # truncated
    proc = cli("score", "model.lstm", "in", "-o", "out", "--workers", "2", "--no-progress", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "cut.npy" in proc.stderr and "cannot read it" in proc.stderr, proc.stderr
    assert f"scored {len(arrays)} input(s)" in proc.stdout and "2 worker(s)" in proc.stdout, proc.stdout
    assert_outputs(tmp_path / "out", model_bytes, arrays)


def test_last_step_only(tmp_path, model_bytes, local_client, capsys):
    """--last keeps each sequence's last output; with fsync and Dask's progress bar on stdout."""
    arrays = write_inputs(tmp_path / "in", 6, seed=1)
    report = score(model_bytes, [tmp_path / "in"], tmp_path / "out", last=True, client=local_client, fsync=True,
                   progress=True)
    # Dask's bar was shown (on a fast run it may clear its line before drawing 100%)
    assert "% Completed" in capsys.readouterr().out
    assert report.ok and len(report.done) == len(arrays) and report.workers == 2
    assert np.load(tmp_path / "out" / "batch.npy").shape == (5, 3)
    assert np.load(tmp_path / "out" / "seq0.npy").shape == (3,)
    assert_outputs(tmp_path / "out", model_bytes, arrays, last=True)


def test_bad_inputs_are_reported_and_skipped(tmp_path, model_bytes, local_client):
    """Truncated, not numpy, wrong shape, NaN (with its sequence and step), wrong dtype, empty archive:
    each is named with its reason, writes nothing, and the good inputs around them are all scored."""
    folder = tmp_path / "in"
    arrays = write_inputs(folder, 6, seed=2)
    np.save(folder / "cut.npy", np.ones((40, 6), np.float32))
    (folder / "cut.npy").write_bytes((folder / "cut.npy").read_bytes()[:100])
    (folder / "text.npz").write_text("not an archive")
    np.save(folder / "wide.npy", np.zeros((10, 7), np.float32))
    nan = np.zeros((2, 9, 6), np.float32)
    nan[1, 4, 2] = np.nan
    np.save(folder / "nan.npy", nan)
    np.save(folder / "words.npy", np.array([["a"] * 6] * 3))
    np.savez(folder / "empty.npz")
    (tmp_path / "model.txt").write_text("a file that is no input")
    report = score(model_bytes, [folder, tmp_path / "nowhere.npy", tmp_path / "model.txt"], tmp_path / "out",
                   client=local_client, batch_bytes=1)
    assert sorted(report.done) == sorted(f"{folder}/{name}" for name in arrays)
    why = {os.path.basename(k): v for k, v in report.failed.items()}
    assert set(why) == {"cut.npy", "text.npz", "wide.npy", "nan.npy", "words.npy", "empty.npz", "nowhere.npy",
                        "model.txt"}
    assert why["cut.npy"].startswith("cannot read it")
    assert why["text.npz"].startswith("cannot read it")
    assert "shape (T, 6) or (N, T, 6), got float32 (10, 7)" in why["wide.npy"]
    assert why["nan.npy"].startswith("the array, sequence 1, step 4: run: input contains NaN"), why["nan.npy"]
    assert "real numbers" in why["words.npy"]
    assert "no arrays" in why["empty.npz"]
    assert why["nowhere.npy"] == "no such file or folder"
    assert "not a .npy or .npz file" in why["model.txt"]
    assert_outputs(tmp_path / "out", model_bytes, arrays)


def test_rerun_skips_finished_outputs(tmp_path, model_bytes, local_client):
    """A rerun writes only what is missing or cut short (as by a machine crash after the rename): finished
    outputs are not touched; a temporary file left by a dead worker is removed; each worker process opened
    the model once however many tasks it ran."""
    arrays = write_inputs(tmp_path / "in", 6, seed=3)
    first = score(model_bytes, [tmp_path / "in"], tmp_path / "out", client=local_client, batch_bytes=1)
    assert first.ok and len(first.done) == len(arrays)
    assert sum(local_client.run(models_opened).values()) <= 2  # per process; the fixture's earlier runs too
    out = tmp_path / "out"
    mtimes = {name: (out / name).stat().st_mtime_ns for name in arrays}
    redo = ["seq1.npy", "seq2.npy", "batch.npy", "mixed.npz"]
    (out / "seq2.npy").unlink()
    (out / ".seq2.npy.deadbeef-00000000.score-tmp").write_bytes(b"half an output")
    (out / "seq1.npy").write_bytes(b"")
    (out / "batch.npy").write_bytes((out / "batch.npy").read_bytes()[:-4])
    (out / "mixed.npz").write_bytes((out / "mixed.npz").read_bytes()[:-10])
    again = score(model_bytes, [tmp_path / "in"], out, client=local_client, batch_bytes=1)
    assert sorted(again.done) == sorted(f"{tmp_path / 'in'}/{n}" for n in redo), again
    assert len(again.skipped) == len(arrays) - len(redo)
    assert all((out / n).stat().st_mtime_ns == t for n, t in mtimes.items() if n not in redo)
    assert_outputs(out, model_bytes, arrays)
    nothing = score(model_bytes, [tmp_path / "in"], out)  # all done: no cluster is started
    assert nothing.workers == 0 and not nothing.done and len(nothing.skipped) == len(arrays)


# --- a cluster of `dask scheduler` and `dask worker` processes --------------------------------------------

def test_cli_scheduler_equals_in_process(tmp_path, dask_cluster):
    """--scheduler runs on an existing cluster unchanged (an int8-dynamic model here)."""
    address, _, _ = dask_cluster
    model_bytes = make_model(6, 32, layers=2, dtype="int8-dynamic", seed=4)
    (tmp_path / "model.lstm").write_bytes(model_bytes)
    arrays = write_inputs(tmp_path / "in", 6, seed=4)
    proc = cli("score", "model.lstm", "in", "-o", "out", "--scheduler", address, "--batch-mb", "0.001",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"on {address} (2 worker(s))" in proc.stdout, proc.stdout
    assert_outputs(tmp_path / "out", model_bytes, arrays)
    again = cli("score", "model.lstm", "in", "-o", "out", "--scheduler", address, cwd=tmp_path)
    assert again.returncode == 0 and f"{len(arrays)} already done" in again.stdout, again.stdout


def test_worker_killed_mid_run_loses_and_duplicates_nothing(tmp_path, dask_cluster):
    """SIGKILL one of the two workers while both run tasks: Dask re-runs its tasks on the other; every
    input is reported done exactly once, every output is complete and correct, no temporary file remains."""
    address, client, workers = dask_cluster
    model_bytes = make_model(16, 128, layers=2, seed=5)  # ~0.1 s per file: the run lasts a few seconds
    rng = np.random.default_rng(5)
    arrays = {f"s{i:02d}.npy": rng.standard_normal((4, 1000, 16)).astype(np.float32) for i in range(24)}
    (tmp_path / "in").mkdir()
    for name, xs in arrays.items():
        np.save(tmp_path / "in" / name, xs)
    out = tmp_path / "out"
    box: dict = {}
    thread = threading.Thread(target=lambda: box.update(report=score(
        model_bytes, [tmp_path / "in"], out, scheduler=address, batch_bytes=1)), daemon=True)
    thread.start()
    deadline = time.monotonic() + RUN_TIMEOUT
    victim = None
    while victim is None:  # wait until a few outputs exist and a worker is running a task, then kill it
        assert time.monotonic() < deadline and thread.is_alive(), "the run ended before a worker was killed"
        done = [n for n in os.listdir(out) if n.endswith(".npy")] if out.exists() else []
        if len(done) >= 3:
            busy = [addr for addr, keys in client.processing().items() if keys]
            pids = client.run(os.getpid, workers=busy[:1]) if busy else {}
            victim = next(iter(pids.values()), None)
        time.sleep(0.02)
    workers[victim].kill()
    workers[victim].wait(timeout=10)
    thread.join(timeout=RUN_TIMEOUT)
    assert not thread.is_alive(), "the run did not finish after the kill"
    report = box["report"]
    assert report.ok, report.failed
    assert sorted(report.done) == sorted(f"{tmp_path / 'in'}/{n}" for n in arrays)  # each exactly once
    assert len(client.scheduler_info()["workers"]) == 1
    assert_outputs(out, model_bytes, arrays)
