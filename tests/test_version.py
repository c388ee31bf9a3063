"""One version: the Python package (pyproject.toml, lstm_embed.__version__) and the C library it was built
with (lstm.h's LSTM_VERSION_*, lstm_version()) say the same."""
import re
from pathlib import Path

import lstm_embed

ROOT = Path(__file__).resolve().parent.parent


def test_versions_agree():
    pyproject = (ROOT / "pyproject.toml").read_text()
    declared = re.search(r'^version = "([^"]+)"', pyproject, re.M).group(1)
    header = (ROOT / "src" / "lstm_c" / "lstm.h").read_text()
    parts = [re.search(rf"#define LSTM_VERSION_{p} (\d+)", header).group(1) for p in ("MAJOR", "MINOR", "PATCH")]
    assert declared == lstm_embed.__version__ == ".".join(parts) == lstm_embed.c_version()
