"""`lstm-embed export-c`: the model as a 64-byte aligned C array plus a header of compile-time sizes. The
generated files are compiled with a small host program against the C core (src/lstm_c/*.c), which runs
the model from the array and must give the Python Model's outputs; the header's sizes must equal the
library's size functions."""
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import lstm_embed
from lstm_embed.cli import main

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "lstm_c"
TINY = ROOT / "examples" / "models" / "tiny.lstm"
CC = os.environ.get("CC", "cc")
FLAGS = ["-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off", "-fno-math-errno",
         "-fno-trapping-math"]
STEPS = 9

needs_cc = pytest.mark.skipif(shutil.which(CC) is None, reason=f"needs a C compiler (`{CC}`)")

HOST_C = r"""
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "lstm.h"
#include "model_data.h"

static unsigned char state_buf[MYNET_STATE_SIZE]; /* the header's size, exactly */

/* Step the model from the array over STEPS frames read from stdin as text; print the outputs. */
int main(void) {
    if ((uintptr_t)mynet % 64 != 0 || mynet_len != MYNET_LEN) return 10;
    lstm_model *m;
    lstm_status st = lstm_model_open(mynet, MYNET_LEN, &m);
    if (st != LSTM_OK) { fprintf(stderr, "%s\n", lstm_status_str(st)); return 11; }
    if (lstm_state_size(m) != MYNET_STATE_SIZE) return 12;
    for (size_t k = 1; k < 40; k += 7) {
        if (lstm_run_workspace_size(m, k) != MYNET_RUN_WORKSPACE_SIZE(k)) return 13;
        if (lstm_step_many_workspace_size(m, k) != MYNET_STEP_MANY_WORKSPACE_SIZE(k)) return 14;
    }
    lstm_state *s;
    if (lstm_state_init(m, state_buf, sizeof state_buf, &s) != LSTM_OK) return 15;
    float x[MYNET_INPUT_SIZE], y[MYNET_OUTPUT_SIZE];
    for (int t = 0; t < STEPS; t++) {
        for (unsigned i = 0; i < MYNET_INPUT_SIZE; i++)
            if (scanf("%f", &x[i]) != 1) return 16;
        if (lstm_step(s, x, y) != LSTM_OK) return 17;
        for (unsigned j = 0; j < MYNET_OUTPUT_SIZE; j++) printf("%.9g ", y[j]);
        printf("\n");
    }
    lstm_model_close(m);
    return 0;
}
"""


def int8_dynamic_model():
    torch = pytest.importorskip("torch")
    torch.manual_seed(7)
    lstm = torch.nn.LSTM(6, 21, num_layers=2, batch_first=True)
    head = torch.nn.Linear(21, 3)
    return lstm_embed.convert_torch(lstm, head=head, dtype="int8-dynamic")


@pytest.fixture(params=["fp32", "int8-dynamic"])
def model_file(request, tmp_path):
    path = tmp_path / "net.lstm"
    if request.param == "fp32":
        shutil.copy(TINY, path)
    else:
        path.write_bytes(int8_dynamic_model())
    return path


def export(model_file, out_dir, *extra):
    return main(["export-c", str(model_file), "-o", str(out_dir / "model_data.c"), "--name", "mynet", *extra])


def test_export_writes_array_and_header(model_file, tmp_path, capsys):
    assert export(model_file, tmp_path) == 0
    assert "wrote" in capsys.readouterr().out
    c_text = (tmp_path / "model_data.c").read_text()
    h_text = (tmp_path / "model_data.h").read_text()
    data = model_file.read_bytes()
    model = lstm_embed.Model.from_bytes(data)
    assert f"const unsigned char mynet[MYNET_LEN] MYNET_ALIGN_END" in c_text
    for needle in ("__attribute__((aligned(64)))", "_Alignas(64)", 'data_alignment=64', "__align(64)"):
        assert needle in c_text
    assert f"#define MYNET_LEN {len(data)}u" in h_text
    assert f"#define MYNET_STATE_SIZE {model.state_size}u" in h_text
    assert "LSTM_MODEL_MEM_SIZE" in h_text
    # the bytes in the array are the file's
    body = c_text[c_text.index("= {") + 3:c_text.index("};")]
    assert bytes(int(v, 16) for v in body.replace(",", " ").split()) == data


@needs_cc
def test_exported_array_runs_like_python(model_file, tmp_path):
    assert export(model_file, tmp_path) == 0
    (tmp_path / "host.c").write_text(HOST_C)
    exe = tmp_path / "host"
    cmd = [CC, *FLAGS, f"-DSTEPS={STEPS}", f"-I{SRC}", f"-I{tmp_path}", tmp_path / "host.c",
           tmp_path / "model_data.c", *sorted(SRC.glob("*.c")), "-lm", "-o", exe]
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    model = lstm_embed.Model.load(model_file)
    xs = np.random.default_rng(3).uniform(-2, 2, (STEPS, model.input_size)).astype(np.float32)
    text_in = "\n".join(" ".join(f"{v:.9g}" for v in row) for row in xs)
    proc = subprocess.run([str(exe)], input=text_in, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr}"
    ys = np.array([[float(v) for v in line.split()] for line in proc.stdout.strip().splitlines()])
    stream = model.stream()
    want = np.stack([stream.step(x) for x in xs])
    np.testing.assert_allclose(ys, want, rtol=0, atol=2e-6)


def test_default_name_and_header_path(tmp_path):
    out = tmp_path / "my-model.c"
    assert main(["export-c", str(TINY), "-o", str(out)]) == 0
    assert "const unsigned char my_model[MY_MODEL_LEN]" in out.read_text()
    assert (tmp_path / "my-model.h").exists()
    assert main(["export-c", str(TINY), "-o", str(out), "--header", str(tmp_path / "sizes.h")]) == 0
    assert '#include "sizes.h"' in out.read_text()


def test_refuses_a_damaged_model(tmp_path, capsys):
    data = bytearray(TINY.read_bytes())
    data[200] ^= 0xFF
    bad = tmp_path / "bad.lstm"
    bad.write_bytes(bytes(data))
    assert main(["export-c", str(bad), "-o", str(tmp_path / "model_data.c")]) == 1
    assert "error" in capsys.readouterr().err
    assert not (tmp_path / "model_data.c").exists() and not (tmp_path / "model_data.h").exists()


def test_bad_name_is_a_usage_error(tmp_path, capsys):
    assert main(["export-c", str(TINY), "-o", str(tmp_path / "m.c"), "--name", "3d-model"]) == 2
    assert "C identifier" in capsys.readouterr().err
