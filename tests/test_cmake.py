"""The C library's CMake build (CMakeLists.txt): configure, build, install into a temporary prefix, then
compile and run small consumers through find_package(lstm_embed), pkg-config and add_subdirectory, and
check what the shared library exports. Skipped when cmake or a C compiler is missing."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
HEADER = ROOT / "src" / "lstm_c" / "lstm.h"
TINY = ROOT / "examples" / "models" / "tiny.lstm"
CC = os.environ.get("CC", "cc")
TIMEOUT = 300  # seconds for any one step

pytestmark = pytest.mark.skipif(
    shutil.which("cmake") is None or shutil.which(CC) is None,
    reason=f"the CMake build needs `cmake` and a C compiler (`{CC}`), and one of them is missing",
)

CONSUMER_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include "lstm.h"

/* Open the model file argv[1], step it over 5 frames (x[i] = 0.25 * (t - i)), print the outputs. */
int main(int argc, char **argv) {
    if (argc != 2) return 2;
    FILE *f = fopen(argv[1], "rb");
    if (!f) return 3;
    static unsigned char bytes[1 << 16];
    size_t len = fread(bytes, 1, sizeof bytes, f);
    fclose(f);
    if (lstm_version_number() != LSTM_VERSION_MAJOR * 10000 + LSTM_VERSION_MINOR * 100 + LSTM_VERSION_PATCH)
        return 4;
    lstm_model *m;
    lstm_status st = lstm_model_open(bytes, len, &m);
    if (st != LSTM_OK) { fprintf(stderr, "%s\n", lstm_status_str(st)); return 5; }
    lstm_model_info info;
    lstm_model_get_info(m, &info);
    void *buf = malloc(lstm_state_size(m));
    lstm_state *s;
    if (lstm_state_init(m, buf, lstm_state_size(m), &s) != LSTM_OK) return 6;
    float x[64], y[64];
    for (int t = 0; t < 5; t++) {
        for (unsigned i = 0; i < info.input_size; i++) x[i] = 0.25f * (float)(t - (int)i);
        if (lstm_step(s, x, y) != LSTM_OK) return 7;
        for (unsigned j = 0; j < info.output_size; j++) printf("%.9g ", y[j]);
        printf("\n");
    }
    printf("version %s\n", lstm_version());
    free(buf);
    lstm_model_close(m);
    return 0;
}
"""


def run(cmd, **kw):
    proc = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=TIMEOUT, **kw)
    assert proc.returncode == 0, f"`{' '.join(map(str, cmd))}` exited with {proc.returncode}:\n{proc.stdout}"
    return proc.stdout


def expected_outputs():
    import lstm_embed

    model = lstm_embed.Model.load(TINY)
    stream = model.stream()
    xs = np.array([[0.25 * (t - i) for i in range(model.input_size)] for t in range(5)], dtype=np.float32)
    return np.stack([stream.step(x) for x in xs])


def check_consumer(exe, env=None):
    out = run([exe, TINY], env=env)
    lines = out.strip().splitlines()
    ys = np.array([[float(v) for v in line.split()] for line in lines[:-1]], dtype=np.float32)
    np.testing.assert_allclose(ys, expected_outputs(), rtol=0, atol=1e-5)
    major, minor, patch = (header_define(f"VERSION_{k}") for k in ("MAJOR", "MINOR", "PATCH"))
    assert lines[-1] == f"version {major}.{minor}.{patch}"


def header_define(name):
    return int(re.search(rf"^#define LSTM_{name} (\d+)", HEADER.read_text(), re.M).group(1))


def public_functions():
    """The functions lstm.h declares with LSTM_API."""
    return set(re.findall(r"^LSTM_API\b[^(;]*?\b(lstm_\w+)\s*\(", HEADER.read_text(), re.M))


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Configure, build and install the default build (static + shared, no BLAS); returns the prefix."""
    tmp = tmp_path_factory.mktemp("cmake")
    build, prefix = tmp / "build", tmp / "prefix"
    run(["cmake", "-S", ROOT, "-B", build, "-DCMAKE_BUILD_TYPE=Release", f"-DCMAKE_C_COMPILER={CC}"])
    run(["cmake", "--build", build, "-j2"])
    run(["cmake", "--install", build, "--prefix", prefix])
    return prefix


def libdir(prefix):
    (d,) = [p.parent for p in prefix.glob("lib*/liblstm_embed.a")]
    return d


def test_install_layout(installed):
    lib = libdir(installed)
    assert sorted(p.name for p in (installed / "include").iterdir()) == ["lstm.h"], "only lstm.h is public"
    abi = header_define("ABI_VERSION")
    assert (lib / f"liblstm_embed.so.{abi}").exists() and (lib / "liblstm_embed.so").is_symlink()
    assert (lib / "cmake" / "lstm_embed" / "lstm_embedConfig.cmake").exists()
    assert (lib / "pkgconfig" / "lstm_embed.pc").exists()
    if shutil.which("readelf"):
        dyn = run(["readelf", "-d", lib / "liblstm_embed.so"])
        assert f"[liblstm_embed.so.{abi}]" in dyn


def test_shared_library_exports_only_the_public_api(installed):
    if shutil.which("nm") is None:
        pytest.skip("nm is missing")
    out = run(["nm", "-D", "--defined-only", libdir(installed) / "liblstm_embed.so"])
    exported = {line.split()[-1] for line in out.splitlines() if line.strip()}
    public = public_functions()
    assert public and public <= exported, f"not exported: {sorted(public - exported)}"
    extra = exported - public
    assert not extra, f"exported beyond lstm.h's LSTM_API functions: {sorted(extra)}"


def test_find_package_consumer(installed, tmp_path):
    (tmp_path / "main.c").write_text(CONSUMER_C)
    (tmp_path / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.16)\nproject(consumer C)\n"
        "find_package(lstm_embed 0.3 REQUIRED)\n"
        "add_executable(consumer_static main.c)\n"
        "target_link_libraries(consumer_static PRIVATE lstm_embed::lstm_embed)\n"
        "add_executable(consumer_shared main.c)\n"
        "target_link_libraries(consumer_shared PRIVATE lstm_embed::lstm_embed_shared)\n")
    build = tmp_path / "build"
    run(["cmake", "-S", tmp_path, "-B", build, f"-DCMAKE_PREFIX_PATH={installed}", f"-DCMAKE_C_COMPILER={CC}"])
    run(["cmake", "--build", build, "-j2"])
    check_consumer(build / "consumer_static")
    check_consumer(build / "consumer_shared")


def test_pkg_config_consumer(installed, tmp_path):
    if shutil.which("pkg-config") is None:
        pytest.skip("pkg-config is missing")
    env = {**os.environ, "PKG_CONFIG_PATH": str(libdir(installed) / "pkgconfig")}
    (tmp_path / "main.c").write_text(CONSUMER_C)
    shared_flags = run(["pkg-config", "--cflags", "--libs", "lstm_embed"], env=env).split()
    static_flags = run(["pkg-config", "--static", "--cflags", "--libs", "lstm_embed"], env=env).split()
    run([CC, "-std=c99", tmp_path / "main.c", *shared_flags, f"-Wl,-rpath,{libdir(installed)}",
         "-o", tmp_path / "shared"])
    run([CC, "-std=c99", "-static", tmp_path / "main.c", *static_flags, "-o", tmp_path / "static"])
    check_consumer(tmp_path / "shared")
    check_consumer(tmp_path / "static")


def test_add_subdirectory_consumer(tmp_path):
    (tmp_path / "main.c").write_text(CONSUMER_C)
    (tmp_path / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.16)\nproject(consumer C)\n"
        f"add_subdirectory(\"{ROOT.as_posix()}\" lstm_embed)\n"
        "add_executable(consumer main.c)\n"
        "target_link_libraries(consumer PRIVATE lstm_embed::lstm_embed)\n")
    build = tmp_path / "build"
    out = run(["cmake", "-S", tmp_path, "-B", build, "-DLSTM_SIMD=OFF", f"-DCMAKE_C_COMPILER={CC}"])
    assert "lstm_embed " in out and "SIMD OFF" in out
    run(["cmake", "--build", build, "-j2"])
    check_consumer(build / "consumer")
    assert not (build / "lstm_embed" / "lstm_embed.pc").exists(), "a subproject installs nothing by default"


def test_scipy_openblas32_build(tmp_path):
    scipy_openblas32 = pytest.importorskip("scipy_openblas32")
    build = tmp_path / "build"
    run(["cmake", "-S", ROOT, "-B", build, "-DCMAKE_BUILD_TYPE=Release", "-DLSTM_BLAS=scipy-openblas32",
         "-DLSTM_STATIC_AND_SHARED=OFF", "-DBUILD_SHARED_LIBS=ON", f"-DCMAKE_C_COMPILER={CC}",
         f"-DLSTM_SCIPY_OPENBLAS_INCLUDE_DIR={scipy_openblas32.get_include_dir()}",
         f"-DLSTM_SCIPY_OPENBLAS_LIB_DIR={scipy_openblas32.get_lib_dir()}"])
    run(["cmake", "--build", build, "-j2"])
    (so,) = build.glob("liblstm_embed.so.*.*")
    if shutil.which("nm"):
        assert "scipy_cblas_sgemv" in run(["nm", "-D", "--undefined-only", so])
