"""The fuzz harnesses (tools/fuzz/) build and pass on the committed corpus and on the saved crash inputs.

Builds the four harnesses with clang in replay mode (ASan + UBSan, -fno-sanitize-recover=all, a plain
main() instead of libFuzzer, so only clang's sanitizer runtimes are needed) and runs every file of
tools/fuzz/corpus/ and tools/fuzz/crashes/ through them once: the corpus keeps passing, and inputs that once
crashed the core stay fixed. Fuzzing itself runs in .ci/fuzz.sh. Skipped without clang.
"""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "tools" / "fuzz"


def _clang():
    for name in ("clang-19", "clang-18", "clang-17", "clang-16", "clang-15", "clang-14", "clang"):
        if shutil.which(name):
            return name
    return None


@pytest.fixture(scope="module")
def replay_build(tmp_path_factory):
    cc = os.environ.get("CLANG") or _clang()
    if cc is None:
        pytest.skip("clang is not installed: the fuzz harnesses need clang with ASan/UBSan "
                    "(Debian: apt-get install clang-16)")
    out = tmp_path_factory.mktemp("fuzz-replay")
    env = dict(os.environ, CLANG=cc)
    proc = subprocess.run(["bash", str(FUZZ / "build.sh"), "replay", str(out)], env=env, capture_output=True,
                          text=True, timeout=600)
    if proc.returncode == 2:  # build.sh: the compiler cannot link the sanitizers
        pytest.skip(f"cannot build the fuzz harnesses here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def _inputs(kind):
    dirs = [FUZZ / "corpus" / kind]
    files = [p for d in dirs for p in sorted(d.iterdir()) if p.is_file()]
    crashes = FUZZ / "crashes"
    if crashes.is_dir():
        ext = ".snap" if kind == "snapshot" else ".lstm"
        files += [p for p in sorted(crashes.iterdir()) if p.suffix == ext]
    return files


@pytest.mark.parametrize("harness", ["model_raw", "model_crc", "snapshot_raw", "snapshot_crc"])
def test_corpus_replays_clean(replay_build, harness):
    kind = harness.split("_")[0]
    files = _inputs(kind)
    assert files, f"no {kind} corpus in {FUZZ / 'corpus'}"
    env = dict(os.environ, UBSAN_OPTIONS="print_stacktrace=1", ASAN_OPTIONS="detect_leaks=1")
    binary = str(replay_build / f"fuzz_{harness}")
    proc = subprocess.run([binary, *map(str, files)], env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode == 0:
        assert f"replayed {len(files)} inputs" in proc.stdout, proc.stdout
        return
    failures = []
    for f in files:  # one process per input, so each failure names its input and the rest still run
        proc = subprocess.run([binary, str(f)], env=env, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-12:])
            failures.append(f"{f.relative_to(ROOT)} (exit {proc.returncode}):\n{tail}")
    assert failures, "the inputs failed together but pass one by one (state leaking between inputs?)"
    assert not failures, f"{len(failures)} of {len(files)} inputs fail fuzz_{harness}:\n\n" + "\n\n".join(failures)
