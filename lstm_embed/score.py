"""Batch scoring of archived sequences on a Dask cluster (a local one by default); ``lstm-embed score``.

    from lstm_embed.score import score
    report = score("model.lstm", ["archive/"], "scores/")               # LocalCluster: 1 worker per core
    report = score("model.lstm", ["a.npy", "b.npz"], "scores/", last=True,
                   scheduler="tcp://10.0.0.5:8786")                     # an existing Dask cluster
    print(report.done, report.skipped, report.failed)

Inputs are ``.npy`` / ``.npz`` files (or folders of them, not recursive) holding one sequence
``(T, input_size)`` or a batch ``(N, T, input_size)`` per array. Every sequence is run with ``Stream.run``
from a zero state. Each input gets one output file of the same name in the output folder: ``x.npy`` ->
``OUT/x.npy``, ``x.npz`` -> ``OUT/x.npz`` with the same array names; an array of shape ``(T, I)`` gives
``(T, output_size)`` float32 (``(output_size,)`` with ``last=True``), ``(N, T, I)`` gives
``(N, T, output_size)`` (``(N, output_size)``). Outputs are written to a temporary file and renamed, so an
output that exists is complete: a rerun skips it (after checking that it is whole: an output cut short by
a machine crash before the operating system wrote it out is scored again; ``fsync=True`` makes each output
durable before its rename, at a few ms per file). An input that cannot be scored (unreadable, wrong shape,
NaN) is reported in ``ScoreReport.failed`` with the reason, writes nothing and does not stop the others.

The model travels to each worker once (``client.scatter(..., broadcast=True)``); each worker process
opens it once and reuses one stream per thread. Inputs are grouped into tasks of about ``batch_bytes``
(fewer when that would leave workers idle); a task skips the outputs that exist when it starts, so a
task Dask re-runs after its worker died redoes only what that worker had not written. dask and
distributed are imported only when a run needs a cluster (``pip install "lstm-embed[dask]"``).
"""
from __future__ import annotations

import json
import logging
import os
import platform
import threading
import time
import uuid
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Iterable, Union

import numpy as np

from lstm_embed._lstm import FORMAT, Model, Stream
from lstm_embed.errors import LstmError, MissingDependencyError, NonFiniteInputError, ScoreError

PathLike = Union[str, "os.PathLike[str]"]

#: File written in the output folder: which model and mode made the outputs there (a rerun must match).
MANIFEST = "lstm-embed-score.json"
#: Input file suffixes scored; folders are searched (not recursively) for these.
SUFFIXES = (".npy", ".npz")
#: Default input bytes per Dask task: large enough that Dask's ~1 ms per task is noise.
DEFAULT_BATCH_BYTES = 32 << 20
_TMP_SUFFIX = ".score-tmp"  # temporary outputs: ".<name>.<run>-<random>.score-tmp", renamed when complete
_MODEL_CACHE_SIZE = 4  # models kept open per worker process (one per model file scored recently)
#: Scheduler options of the local cluster: no dashboard, and its small HTTP server (health, metrics) on a
#: free port of 127.0.0.1 (by default it takes 8787 and warns when another cluster holds it).
LOOPBACK_HTTP = {"dashboard": False, "dashboard_address": "127.0.0.1:0"}
_INSTALL_HINT = 'scoring on Dask needs the dask extra: pip install "lstm-embed[dask]"'


@dataclass
class ScoreReport:
    """What a scoring run did. Input names are the paths as given (files found in a folder: folder/name)."""

    out: str
    """The output folder."""
    done: list[str] = field(default_factory=list)
    """Inputs whose output this run wrote (in input order)."""
    skipped: list[str] = field(default_factory=list)
    """Inputs whose output already existed when the run started (a rerun's finished work)."""
    failed: dict[str, str] = field(default_factory=dict)
    """Input -> why it could not be scored. Nothing was written for it; a rerun tries it again."""
    workers: int = 0
    """Dask workers the run used (0 when nothing was left to score and no cluster was needed)."""
    seconds: float = 0.0
    """Wall time of the run."""

    @property
    def ok(self) -> bool:
        """True when every input has its output."""
        return not self.failed


# --- inputs and outputs ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Job:
    """One input file and the output file it gets."""

    name: str  # as the user sees it
    src: str  # absolute input path
    dst: str  # absolute output path


def _find_inputs(paths: Iterable[PathLike], out: str) -> tuple[list[_Job], dict[str, str]]:
    """Expand folders; map each input to its output file. Returns (jobs, failures by name)."""
    jobs: list[_Job] = []
    failed: dict[str, str] = {}
    seen: set[str] = set()
    by_output: dict[str, str] = {}
    for given in map(os.fspath, paths):
        if os.path.isdir(given):
            names = sorted(n for n in os.listdir(given) if n.lower().endswith(SUFFIXES) and not n.startswith(".")
                           and os.path.isfile(os.path.join(given, n)))
            if not names:
                failed[given] = "the folder holds no .npy or .npz files"
            files = [os.path.join(given, n) for n in names]
        elif not os.path.exists(given):
            failed[given] = "no such file or folder"
            continue
        elif not given.lower().endswith(SUFFIXES):
            failed[given] = "not a .npy or .npz file (save sequences with np.save or np.savez)"
            continue
        else:
            files = [given]
        for name in files:
            src = os.path.realpath(name)
            if src in seen:
                continue
            seen.add(src)
            dst = os.path.join(out, os.path.basename(name))
            if os.path.realpath(dst) == src:
                raise ScoreError(f"the output folder {out} holds the input {name}: its output would replace it; "
                                 "write the outputs to another folder (-o)")
            if dst in by_output:
                raise ScoreError(f"{by_output[dst]} and {name} would both write {dst}: inputs must have "
                                 "different file names (rename one, or score them into different folders)")
            by_output[dst] = name
            jobs.append(_Job(name, src, dst))
    return jobs, failed


def _check_manifest(out: str, fingerprint: int, output_size: int, last: bool) -> None:
    """Refuse an output folder filled by another model or mode; record this run's (atomically)."""
    want = {"model_fingerprint": f"{fingerprint:016x}", "output_size": output_size, "last": last}
    path = os.path.join(out, MANIFEST)
    if os.path.exists(path):
        try:
            with open(path) as f:
                have = json.load(f)
        except (OSError, ValueError) as e:
            raise ScoreError(f"cannot read {path} ({e}); delete it if the outputs in {out} are yours") from None
        diff = [f"{k} {have.get(k)!r} there, {v!r} now" for k, v in want.items() if have.get(k) != v]
        if diff:
            raise ScoreError(f"{out} holds outputs of another scoring run ({'; '.join(diff)}): score into "
                             f"another folder, or delete {out} to start over")
        return
    tmp = f"{path}.{uuid.uuid4().hex[:8]}{_TMP_SUFFIX}"
    with open(tmp, "w") as f:
        json.dump(want, f, indent=2)
    os.replace(tmp, path)


def _remove_temporaries(out: str, run_id: str | None = None) -> None:
    """Delete temporary outputs (of ``run_id``, or of any earlier run) that a dead worker left behind."""
    for name in os.listdir(out):
        if name.endswith(_TMP_SUFFIX) and (run_id is None or f".{run_id}-" in name):
            try:
                os.remove(os.path.join(out, name))
            except FileNotFoundError:
                pass


def _is_whole(path: str) -> bool:
    """Whether an output file is complete: its .npy header matches its length, or its .npz directory
    (at the end of the file) reads. A file renamed into place but cut short by a machine crash is not."""
    try:
        if path.lower().endswith(".npz"):
            with zipfile.ZipFile(path):
                return True
        np.load(path, mmap_mode="r", allow_pickle=False)  # reads the header, maps the data: checks the length
        return True
    except Exception:
        return False


def _write_atomic(path: str, result: "np.ndarray | dict[str, np.ndarray]", run_id: str, fsync: bool) -> None:
    """Write ``result`` (.npy, or .npz of named arrays) to a temporary file (flushed to disk if ``fsync``),
    then rename it to ``path``."""
    folder, base = os.path.split(path)
    tmp = os.path.join(folder, f".{base}.{run_id}-{uuid.uuid4().hex[:8]}{_TMP_SUFFIX}")
    try:
        with open(tmp, "wb") as f:
            if isinstance(result, dict):
                np.savez(f, **result)
            else:
                np.save(f, result)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


# --- the worker side -----------------------------------------------------------------------------------------

_models: "OrderedDict[bytes, Model]" = OrderedDict()  # header bytes -> Model, per process
_models_lock = threading.Lock()
_streams = threading.local()  # .by_model: header bytes -> this thread's Stream
_opens = 0  # models this process opened (from bytes): one per model unless evicted from the cache


def models_opened() -> int:
    """How many times this process opened a model for scoring: on a worker, once per model scored (the
    cache keeps the last few open). ``client.run(models_opened)`` asks every worker."""
    return _opens


def worker_stream(model_bytes: bytes) -> "Stream":
    """This thread's stream of the model in ``model_bytes``, opened once per process and reused.

    The key is the model file's 128-byte header, which holds a fingerprint of the weights and a CRC32 of
    the whole file. Runs on Dask workers; usable anywhere.
    """
    key = bytes(memoryview(model_bytes)[:FORMAT["HDR_SIZE"]])
    by_model: dict[bytes, Stream] = getattr(_streams, "by_model", None) or {}
    _streams.by_model = by_model
    stream = by_model.get(key)
    if stream is None:
        with _models_lock:
            model = _models.get(key)
            if model is None:
                global _opens
                model = _models[key] = Model.from_bytes(model_bytes)
                _opens += 1
                while len(_models) > _MODEL_CACHE_SIZE:
                    _models.popitem(last=False)
            else:
                _models.move_to_end(key)
        if len(by_model) >= _MODEL_CACHE_SIZE:
            by_model.clear()
        stream = by_model[key] = model.stream()
    return stream


class _InputError(ValueError):
    """One input cannot be scored; the message says why (the input's name is added by the caller)."""


def score_array(stream: "Stream", xs: np.ndarray, last: bool = False, what: str = "array",
                buffers: "dict[tuple, np.ndarray] | None" = None) -> np.ndarray:
    """Score one array with ``stream``: (T, I) -> (T, O) or (O,) with ``last``; (N, T, I) -> (N, T, O)
    or (N, O), every sequence from a zero state. Raises a ``ValueError`` saying why the array cannot be
    scored (wrong shape or dtype; NaN, infinite or out-of-range values, with the sequence's index).

    ``buffers``: a dict in which float32 arrays are kept to reuse for the result and the scratch space
    instead of new ones per call (the result is then overwritten by the next call of the same shape).
    Dask workers run with ``MALLOC_TRIM_THRESHOLD_`` set, under which every large new array costs fresh
    pages from the OS (133 page faults per (1000, 128) output against 9 with reuse)."""
    model = stream.model
    in_size, out_size = model.input_size, model.output_size
    if not isinstance(xs, np.ndarray) or xs.ndim not in (2, 3) or xs.shape[-1] != in_size:
        raise _InputError(f"{what} must have shape (T, {in_size}) or (N, T, {in_size}), got "
                          f"{getattr(xs, 'dtype', type(xs).__name__)} {getattr(xs, 'shape', '')}")
    if xs.dtype.kind not in "fiu":
        raise _InputError(f"{what} must hold real numbers, got dtype {xs.dtype}")
    seqs = xs if xs.ndim == 3 else xs[None]
    n, steps = seqs.shape[0], seqs.shape[1]
    if last and steps == 0:
        raise _InputError(f"{what} has sequences of 0 steps: there is no last output (score without --last)")
    result = _buffer(buffers, "result", (n, out_size) if last else (n, steps, out_size))
    scratch = _buffer(buffers, "scratch", (steps, out_size)) if last else None
    for i in range(n):
        stream.reset()
        try:
            y = stream.run(seqs[i], out=scratch if last else result[i])
        except LstmError as e:
            where = f"{what}, sequence {i}" if xs.ndim == 3 else what
            bad = np.flatnonzero(~np.isfinite(np.asarray(seqs[i], np.float64)).all(axis=1))
            if isinstance(e, NonFiniteInputError) and bad.size:
                where += f", step {bad[0]}"
            raise _InputError(f"{where}: {e}") from None
        if last:
            result[i] = y[-1]
    return result if xs.ndim == 3 else result[0]


def _buffer(buffers: "dict[tuple, np.ndarray] | None", role: str, shape: tuple[int, ...]) -> np.ndarray:
    """A float32 array of ``shape`` for ``role``: the one in ``buffers`` (created there if missing), or a
    new one. Each role has its own arrays, so a result never shares memory with the scratch space."""
    if buffers is None:
        return np.empty(shape, np.float32)
    key = (role, *shape)
    if key not in buffers:
        if len(buffers) >= 8:
            buffers.clear()
        buffers[key] = np.empty(shape, np.float32)
    return buffers[key]


def _score_file(stream: "Stream", src: str, last: bool,
                buffers: "dict[tuple, np.ndarray]") -> "np.ndarray | dict[str, np.ndarray]":
    if src.lower().endswith(".npz"):
        with np.load(src, allow_pickle=False) as archive:
            if not archive.files:
                raise _InputError("the .npz archive holds no arrays")
            return {key: score_array(stream, archive[key], last, f"array {key!r}") for key in archive.files}
    xs = np.load(src, mmap_mode="r", allow_pickle=False)  # read as the sequences are run
    return score_array(stream, xs, last, "the array", buffers)  # written before the next file reuses it


def score_files(model_bytes: bytes, jobs: list[tuple[str, str, str]], last: bool, run_id: str,
                fsync: bool = False) -> list[tuple[str, "str | None"]]:
    """Score ``jobs`` (name, input path, output path) and write each output atomically: the task a Dask
    worker runs (also callable in-process). An output that exists already (written by an earlier attempt
    of this task) is kept. Returns (name, None) per input done and (name, reason) per input that failed."""
    stream = worker_stream(model_bytes)
    buffers: dict[tuple, np.ndarray] = {}  # the result of each .npy, reused once it is written
    results: list[tuple[str, str | None]] = []
    for name, src, dst in jobs:
        if os.path.exists(dst):
            results.append((name, None))
            continue
        try:
            result = _score_file(stream, src, last, buffers)
        except _InputError as e:
            results.append((name, str(e)))
            continue
        except FileNotFoundError:
            results.append((name, f"not found on the worker (host {platform.node()}): every worker needs "
                                  "the inputs at the same path (a shared file system)"))
            continue
        except Exception as e:  # unreadable: truncated, not numpy, pickled objects, damaged zip...
            results.append((name, f"cannot read it: {type(e).__name__}: {e}"))
            continue
        try:
            _write_atomic(dst, result, run_id, fsync)
        except OSError as e:
            results.append((name, f"cannot write {dst}: {e}"))
            continue
        results.append((name, None))
    return results


# --- the client side ---------------------------------------------------------------------------------------

def _distributed():
    """The distributed module, or MissingDependencyError with the pip command."""
    try:
        import dask  # noqa: F401
        import distributed
    except ImportError as e:
        raise MissingDependencyError(f"{_INSTALL_HINT} ({e})") from None
    return distributed


def _model_bytes(model: "Model | bytes | PathLike") -> bytes:
    """The bytes of a model given as a Model, bytes, or a model file's path."""
    if isinstance(model, Model):
        return model.to_bytes()
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model)
    return Model.load(os.fspath(model)).to_bytes()


def _groups(jobs: list[_Job], batch_bytes: int, workers: int) -> list[list[_Job]]:
    """Consecutive jobs in tasks of about ``batch_bytes`` of input, and at least ~4 tasks per worker
    when there are enough files (so a slow or lost worker does not hold up the end of the run)."""
    sizes = []
    for job in jobs:
        try:
            sizes.append(os.path.getsize(job.src))
        except OSError:
            sizes.append(0)
    target = max(1, min(batch_bytes, sum(sizes) // (4 * max(1, workers))))
    groups: list[list[_Job]] = [[]]
    filled = 0
    for job, size in zip(jobs, sizes):
        if filled >= target:
            groups.append([])
            filled = 0
        groups[-1].append(job)
        filled += size
    return [g for g in groups if g]


def _task_failure(exc: BaseException) -> str:
    """Why a whole task failed (not one input): the message each of its inputs is reported with."""
    name = type(exc).__name__
    if name == "KilledWorker":
        return (f"the workers running it died repeatedly ({exc}); it may need more memory than a worker has "
                "(a smaller file, or workers with a larger --memory-limit)")
    if isinstance(exc, ImportError) or name in ("ModuleNotFoundError", "ImportError"):
        return f"the worker cannot import lstm_embed ({exc}): install the same lstm-embed on every worker"
    return f"the task failed on its worker: {name}: {exc}"


def score(model: "Model | bytes | PathLike", inputs: Iterable[PathLike], out: PathLike, *, last: bool = False,
          scheduler: str | None = None, client: Any = None, workers: int | None = None,
          batch_bytes: int = DEFAULT_BATCH_BYTES, fsync: bool = False, progress: bool = False,
          timeout: float = 30.0) -> ScoreReport:
    """Score every sequence of ``inputs`` with ``model`` on Dask; write one output per input into ``out``.

    ``model``: a model file path, its bytes, or a ``Model``. ``inputs``: ``.npy`` / ``.npz`` files or
    folders of them. ``out``: the output folder (created if missing). ``last``: keep only each sequence's
    last output. Cluster: ``client`` (a ``distributed.Client`` you manage), else ``scheduler`` (an address
    such as ``tcp://host:8786``: every worker needs lstm-embed installed and the inputs and ``out`` at the
    same paths), else a ``distributed.LocalCluster`` started for this run and closed after it, with
    ``workers`` processes (default: one per core) of one thread each. ``batch_bytes``: input bytes per
    task. ``fsync``: flush each output to disk before renaming it (survives a power loss, costs a few ms
    per file). ``progress``: show Dask's progress bar on stdout. ``timeout``: seconds to reach the scheduler.

    Returns a ``ScoreReport``; inputs that cannot be scored are in its ``failed``, not raised. Raises
    ``ScoreError`` when the run cannot start (an unreachable scheduler, an ``out`` filled by another model or
    mode, two inputs with one output name), ``MissingDependencyError`` if dask is not installed, and the
    model's own errors (``ModelFormatError``, ``ModelFileNotFoundError``) for a bad model.
    """
    started = time.perf_counter()
    data = _model_bytes(model)
    opened = Model.from_bytes(data)  # a bad model fails here, before any cluster starts
    out = os.path.abspath(os.fspath(out))
    if os.path.exists(out) and not os.path.isdir(out):
        raise ScoreError(f"the output {out} is a file: -o names a folder (one output file per input)")
    if workers is not None and workers < 1:
        raise ScoreError(f"workers must be >= 1, got {workers}")
    os.makedirs(out, exist_ok=True)
    jobs, failed = _find_inputs(inputs, out)
    _check_manifest(out, opened.fingerprint, opened.output_size, last)
    _remove_temporaries(out)
    report = ScoreReport(out=out, failed=failed)
    for job in jobs:
        if os.path.exists(job.dst) and not _is_whole(job.dst):
            os.remove(job.dst)  # cut short by a machine crash: score it again
    report.skipped = [j.name for j in jobs if os.path.exists(j.dst)]
    pending = [j for j in jobs if not os.path.exists(j.dst)]
    if pending:
        run_id = uuid.uuid4().hex[:12]
        with _Connection(client, scheduler, workers, timeout) as dask_client:
            report.workers = len(dask_client.scheduler_info()["workers"])
            results = _run(dask_client, data, _groups(pending, batch_bytes, report.workers), last, run_id,
                           fsync, progress)
        _remove_temporaries(out, run_id)
        order = {j.name: i for i, j in enumerate(jobs)}
        for name, why in sorted(results, key=lambda r: order[r[0]]):
            if why is None:
                report.done.append(name)
            else:
                report.failed[name] = why
    report.seconds = time.perf_counter() - started
    return report


class _Connection:
    """Context manager yielding a Client: the caller's, one to ``scheduler``, or one to a new LocalCluster
    (closed on exit, with every worker process it started)."""

    def __init__(self, client: Any, scheduler: str | None, workers: int | None, timeout: float):
        self._given, self._scheduler, self._workers, self._timeout = client, scheduler, workers, timeout
        self._client = self._cluster = None

    def __enter__(self) -> Any:
        if self._given is not None:
            return self._given
        distributed = _distributed()
        if self._scheduler is not None:
            try:
                self._client = distributed.Client(self._scheduler, timeout=self._timeout)
            except (OSError, TimeoutError, ValueError) as e:
                raise ScoreError(f"cannot reach the Dask scheduler at {self._scheduler} ({type(e).__name__}: "
                                 f"{e}): check the address, and that `dask scheduler` runs there") from None
            try:
                self._client.wait_for_workers(1, timeout=self._timeout)
            except TimeoutError:
                self._client.close()
                raise ScoreError(f"the Dask scheduler at {self._scheduler} has no workers (waited "
                                 f"{self._timeout:g} s): start some with `dask worker {self._scheduler}`") from None
            return self._client
        self._cluster = distributed.LocalCluster(
            n_workers=self._workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
            host="127.0.0.1", dashboard_address=None, scheduler_kwargs=LOOPBACK_HTTP, silence_logs=logging.ERROR)
        try:
            self._client = distributed.Client(self._cluster, timeout=self._timeout)
        except BaseException:
            self._cluster.close()
            raise
        return self._client

    def __exit__(self, *exc) -> None:
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def _run(client: Any, data: bytes, groups: list[list[_Job]], last: bool, run_id: str, fsync: bool,
         progress: bool) -> list[tuple[str, "str | None"]]:
    """Ship the model once per worker, submit one task per group, collect every input's result."""
    distributed = _distributed()
    model_future = client.scatter(data, broadcast=True)
    futures = {client.submit(score_files, model_future, [(j.name, j.src, j.dst) for j in group], last, run_id,
                             fsync, key=f"lstm-embed-score-{run_id}-{i}", pure=False): group
               for i, group in enumerate(groups)}
    if progress:
        distributed.progress(list(futures), notebook=False)
    results: list[tuple[str, str | None]] = []
    for future in distributed.as_completed(list(futures)):
        try:
            results += future.result()
        except Exception as e:  # the whole task failed (not one input): every input of it is reported
            why = _task_failure(e)
            results += [(j.name, why) for j in futures[future]]
    model_future.release()
    return results
