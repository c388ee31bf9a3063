"""The model file: round trips, the layout on disk, and rejection of every kind of malformed file.

Status codes are those of lstm.h: TRUNCATED=3, BAD_MAGIC=4, UNSUPPORTED_VERSION=5, CHECKSUM=6,
BAD_HEADER=7, BAD_TENSOR=8, NONFINITE_WEIGHT=9. Field tweaks are followed by ``crc_fixed`` so that the
field checks behind the checksum are reached.
"""
import struct
import zlib

import numpy as np
import pytest
import torch

import lstm_embed
from lstm_embed import DTypeError, Model, ModelFormatError
from lstm_embed._lstm import FORMAT
from lstm_embed.format import crc_fixed

TRUNCATED, BAD_MAGIC, UNSUPPORTED_VERSION, CHECKSUM, BAD_HEADER, BAD_TENSOR, NONFINITE_WEIGHT = range(3, 10)

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")


@pytest.fixture(scope="module")
def tiny(make_lstm, make_head):
    """(lstm, head, file bytes) of a tiny model that has every tensor role: 2 layers, projection, head."""
    lstm, head = make_lstm(2, 3, 2, proj_size=2, seed=4), make_head(2, 2, seed=4)
    return lstm, head, lstm_embed.convert_torch(lstm, head=head, head_activation="sigmoid")


@pytest.fixture(scope="module")
def data(tiny):
    return tiny[2]


def status_of(blob):
    """The status Model.from_bytes fails with, or 0 when the bytes open."""
    try:
        Model.from_bytes(blob)
    except ModelFormatError as e:
        return e.status
    return 0


def put(blob, offset, fmt, value):
    buf = bytearray(blob)
    struct.pack_into(fmt, buf, offset, value)
    return bytes(buf)


def entry(t, field):
    """Byte offset of a field of tensor table entry t."""
    return FORMAT["HDR_SIZE"] + t * FORMAT["TENSOR_ENTRY_SIZE"] + FORMAT[field]


def table(blob):
    """The tensor table as a list of dicts, read with struct from the documented layout."""
    count = struct.unpack_from("<I", blob, FORMAT["HDR_TENSOR_COUNT"])[0]
    rows = []
    fields = ("TENSOR_ROLE", "TENSOR_INDEX", "TENSOR_DTYPE", "TENSOR_ROWS", "TENSOR_COLS")
    for t in range(count):
        role, index, dtype, nrows, ncols = (struct.unpack_from("<I", blob, entry(t, f))[0] for f in fields)
        offset = struct.unpack_from("<Q", blob, entry(t, "TENSOR_OFFSET"))[0]
        rows.append(dict(role=role, index=index, dtype=dtype, rows=nrows, cols=ncols, offset=offset))
    return rows


def stored_rows(e):
    """Rows a tensor occupies on disk: packed fp32 panels are padded to a multiple of 16 rows."""
    return -(-e["rows"] // 16) * 16 if e["dtype"] == FORMAT["DTYPE_F32_PANELS"] else e["rows"]


def tensor(blob, e):
    """A float tensor as a [rows, cols] array, unpacking panels (16 rows each, column after column)."""
    if e["dtype"] == FORMAT["DTYPE_F32_PANELS"]:
        raw = np.frombuffer(blob, "<f4", stored_rows(e) * e["cols"], e["offset"])
        full = raw.reshape(-1, e["cols"], 16).transpose(0, 2, 1).reshape(-1, e["cols"])
        assert not full[e["rows"]:].any(), "padding rows of a packed tensor are not zero"
        return full[:e["rows"]]
    return np.frombuffer(blob, "<f4", e["rows"] * e["cols"], e["offset"]).reshape(e["rows"], e["cols"])


def outputs(model, seed=0, steps=20):
    xs = np.random.default_rng(seed).standard_normal((steps, model.input_size)).astype(np.float32)
    return model.stream().run(xs)


# ---- round trips and properties ------------------------------------------------------------------------

def test_to_bytes_save_load_round_trip(data, tmp_path):
    model = Model.from_bytes(data)
    assert model.to_bytes() == data
    path = tmp_path / "tiny.lstm"
    model.save(path)
    assert path.read_bytes() == data
    for loaded in (Model.load(path), Model.load(str(path))):
        assert loaded.to_bytes() == data
        assert loaded.fingerprint == model.fingerprint
        np.testing.assert_array_equal(outputs(loaded), outputs(model))


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview, lambda b: np.frombuffer(b, np.uint8)])
def test_from_bytes_accepts_bytes_like(data, kind):
    assert Model.from_bytes(kind(data)).to_bytes() == data


@pytest.mark.parametrize("bad", ["not bytes", 42, None, [1, 2, 3]])
def test_from_bytes_rejects_non_bytes(bad):
    with pytest.raises(DTypeError):
        Model.from_bytes(bad)


def test_load_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError):
        Model.load(tmp_path / "nope.lstm")


def test_load_malformed_file_names_the_path(data, tmp_path):
    path = tmp_path / "cut.lstm"
    path.write_bytes(data[:-10])
    with pytest.raises(ModelFormatError, match="cut.lstm") as info:
        Model.load(path)
    assert info.value.status == TRUNCATED


def test_properties(data):
    m = Model.from_bytes(data)
    assert (m.input_size, m.hidden_size, m.proj_size, m.num_layers, m.num_directions) == (2, 3, 2, 2, 1)
    assert (m.head_size, m.head_activation, m.output_size) == (2, "sigmoid", 2)
    assert (m.dtype, m.layer_dtypes, m.format_version) == ("float32", ("float32", "float32"), FORMAT["VERSION"])
    assert m.file_size == len(data)
    assert m.param_count == sum(e["rows"] * e["cols"] for e in table(data))
    assert m.fingerprint == struct.unpack_from("<Q", data, FORMAT["HDR_FINGERPRINT"])[0]
    assert m.state_size > 0 and not m.closed


def test_fingerprint_follows_the_weights(make_lstm):
    a = lstm_embed.convert_torch(make_lstm(4, 8, seed=1))
    again = lstm_embed.convert_torch(make_lstm(4, 8, seed=1))
    other = lstm_embed.convert_torch(make_lstm(4, 8, seed=2))
    assert Model.from_bytes(a).fingerprint == Model.from_bytes(again).fingerprint
    assert Model.from_bytes(a).fingerprint != Model.from_bytes(other).fingerprint


def test_trailing_bytes_are_ignored(data):
    model = Model.from_bytes(data)
    for tail in (b"\0" * 100, bytes(range(256)), b"x"):
        longer = Model.from_bytes(data + tail)
        assert longer.file_size == len(data)
        assert longer.to_bytes() == data
        np.testing.assert_array_equal(outputs(longer), outputs(model))


# ---- the layout on disk --------------------------------------------------------------------------------

def expected_tensors(lstm, head):
    """{(role, index): float32 array} that the file must hold for these torch modules."""
    sd = {k: v.detach().numpy() for k, v in lstm.state_dict().items()}
    want = {}
    if isinstance(lstm, torch.nn.LSTMCell):
        suffixes = {0: ""}
    else:
        suffixes = {2 * k + d: f"_l{k}" + ("", "_reverse")[d]
                    for k in range(lstm.num_layers) for d in range(1 + lstm.bidirectional)}
    for index, sfx in suffixes.items():
        w_ih = sd["weight_ih" + sfx]
        want[FORMAT["ROLE_WEIGHT"], index] = np.concatenate([w_ih, sd["weight_hh" + sfx]], axis=1)
        bias = np.zeros(w_ih.shape[0], np.float32)
        if "bias_ih" + sfx in sd:
            bias = sd["bias_ih" + sfx] + sd["bias_hh" + sfx]
        want[FORMAT["ROLE_BIAS"], index] = bias.reshape(-1, 1)
        if "weight_hr" + sfx in sd:
            want[FORMAT["ROLE_PROJ"], index] = sd["weight_hr" + sfx]
    if head is not None:
        want[FORMAT["ROLE_HEAD_W"], 0] = head.weight.detach().numpy()
        want[FORMAT["ROLE_HEAD_B"], 0] = head.bias.detach().numpy().reshape(-1, 1)
    return want


def seeded_cell(input_size, hidden_size, seed):
    torch.manual_seed(seed)
    return torch.nn.LSTMCell(input_size, hidden_size)


LAYOUTS = {
    "tiny": lambda mk, hd: (mk(2, 3, 2, proj_size=2, seed=4), hd(2, 2, seed=4)),
    "bidir-proj": lambda mk, hd: (mk(5, 16, 2, proj_size=6, bidirectional=True, seed=5), hd(12, 3, seed=5)),
    "no-bias": lambda mk, hd: (mk(7, 10, 3, bias=False, seed=6), None),
    "cell": lambda mk, hd: (seeded_cell(9, 33, seed=7), hd(33, 4, seed=7)),
    "large": lambda mk, hd: (mk(64, 256, 2, seed=8), hd(256, 10, seed=8)),
}


@pytest.mark.parametrize("name", LAYOUTS)
def test_layout_matches_the_documented_format(name, make_lstm, make_head):
    lstm, head = LAYOUTS[name](make_lstm, make_head)
    blob = lstm_embed.convert_torch(lstm, head=head)
    assert blob[:8] == FORMAT["MAGIC"] == b"LSTMEMB\0"
    version, header_size, file_size = struct.unpack_from("<IIQ", blob, FORMAT["HDR_VERSION"])
    assert (version, file_size) == (FORMAT["VERSION"], len(blob))
    entries = table(blob)
    assert header_size == FORMAT["HDR_SIZE"] + FORMAT["TENSOR_ENTRY_SIZE"] * len(entries)
    crc = struct.unpack_from("<I", blob, FORMAT["HDR_CRC32"])[0]
    assert crc == zlib.crc32(put(blob, FORMAT["HDR_CRC32"], "<I", 0))

    want = expected_tensors(lstm, head)
    assert {(e["role"], e["index"]) for e in entries} == set(want)
    used = np.zeros(len(blob), bool)
    used[:header_size] = True
    for e in entries:
        packed = e["role"] in (FORMAT["ROLE_WEIGHT"], FORMAT["ROLE_PROJ"])  # fp32 layer matrices
        assert e["offset"] % 64 == 0 and e["dtype"] == FORMAT["DTYPE_F32_PANELS" if packed else "DTYPE_F32"]
        end = e["offset"] + 4 * stored_rows(e) * e["cols"]
        assert not used[e["offset"]:end].any(), "tensors overlap"
        used[e["offset"]:end] = True
        np.testing.assert_array_equal(tensor(blob, e), want[e["role"], e["index"]])
    assert not any(blob[i] for i in np.flatnonzero(~used)), "padding is not zero"

    raw = 4 * sum(a.size for a in want.values())
    padding_rows = 4 * sum((stored_rows(e) - e["rows"]) * e["cols"] for e in entries)
    overhead = len(blob) - raw - padding_rows
    assert Model.from_bytes(blob).param_count * 4 == raw
    assert overhead <= FORMAT["HDR_SIZE"] + len(entries) * (FORMAT["TENSOR_ENTRY_SIZE"] + 63) + 63
    if name == "large":
        assert overhead < 700 and raw > 2_000_000


# ---- malformed files -----------------------------------------------------------------------------------

def test_every_truncation_is_rejected(data):
    for n in range(len(data)):
        assert status_of(data[:n]) == TRUNCATED, f"length {n}"


def test_every_bit_flip_is_rejected(data):
    """One bit flipped anywhere: the field checks that come before the CRC, or the CRC itself, catch it."""
    before_crc = {}
    for lo, hi, codes in ((0, 8, {BAD_MAGIC}), (8, 12, {UNSUPPORTED_VERSION}), (12, 16, {BAD_HEADER}),
                          (16, 24, {TRUNCATED, BAD_HEADER, CHECKSUM}), (68, 72, {BAD_HEADER})):
        before_crc.update({i: codes for i in range(lo, hi)})
    for i in range(len(data)):
        for bit in range(8):
            flipped = bytearray(data)
            flipped[i] ^= 1 << bit
            status = status_of(bytes(flipped))
            assert status in before_crc.get(i, {CHECKSUM}), f"byte {i} bit {bit}: status {status}"


@pytest.mark.parametrize("blob,status", [
    (b"", TRUNCATED),
    (b"LSTM", TRUNCATED),
    (b"LSTMEMB\0" + bytes(50), TRUNCATED),
    (b"GIF89a\0\0" + bytes(300), BAD_MAGIC),
    (b"hello world, this is not a model" * 10, BAD_MAGIC),
    (bytes(1000), BAD_MAGIC),
    (b"NOTLSTM!", BAD_MAGIC),
])
def test_not_a_model(blob, status):
    assert status_of(blob) == status


def set_entry(field, fmt, value, t=0):
    return lambda d: put(d, entry(t, field), fmt, value)


def set_header(field, fmt, value):
    return lambda d: put(d, FORMAT[field], fmt, value)


def duplicate_entry(d):
    first = d[entry(0, "TENSOR_ROLE"):entry(1, "TENSOR_ROLE")]
    return d[:entry(1, "TENSOR_ROLE")] + first + d[entry(2, "TENSOR_ROLE"):]


def drop_last_entry(d):
    count = struct.unpack_from("<I", d, FORMAT["HDR_TENSOR_COUNT"])[0]
    d = put(d, FORMAT["HDR_TENSOR_COUNT"], "<I", count - 1)
    return put(d, FORMAT["HDR_HEADER_SIZE"], "<I", FORMAT["HDR_SIZE"] + 32 * (count - 1))


def overlap_second_with_first(d):
    return put(d, entry(1, "TENSOR_OFFSET"), "<Q", table(d)[0]["offset"])


def swap_rows_cols(d):
    e = table(d)[0]
    return put(put(d, entry(0, "TENSOR_ROWS"), "<I", e["cols"]), entry(0, "TENSOR_COLS"), "<I", e["rows"])


def put_float(role, value):
    def mutate(d):
        e = next(e for e in table(d) if e["role"] == FORMAT[role])
        return put(d, e["offset"] + 4 * (e["rows"] * e["cols"] - 1), "<f", value)
    return mutate


BIG = 2**31
MUTATIONS = {
    "version 1 (0.1-0.2)": (set_header("HDR_VERSION", "<I", 1), UNSUPPORTED_VERSION),
    "next version": (set_header("HDR_VERSION", "<I", FORMAT["VERSION"] + 1), UNSUPPORTED_VERSION),
    "version 0": (set_header("HDR_VERSION", "<I", 0), UNSUPPORTED_VERSION),
    "flags": (set_header("HDR_FLAGS", "<I", 1), BAD_HEADER),
    "input_size 0": (set_header("HDR_INPUT_SIZE", "<I", 0), BAD_HEADER),
    "input_size 2**32-1": (set_header("HDR_INPUT_SIZE", "<I", 2**32 - 1), BAD_HEADER),
    "hidden_size 2**31": (set_header("HDR_HIDDEN_SIZE", "<I", BIG), BAD_HEADER),
    "hidden_size 65537": (set_header("HDR_HIDDEN_SIZE", "<I", 65537), BAD_HEADER),
    "hidden_size 4": (set_header("HDR_HIDDEN_SIZE", "<I", 4), BAD_TENSOR),
    "proj_size == hidden": (set_header("HDR_PROJ_SIZE", "<I", 3), BAD_HEADER),
    "proj_size 2**31": (set_header("HDR_PROJ_SIZE", "<I", BIG), BAD_HEADER),
    "proj_size 0": (set_header("HDR_PROJ_SIZE", "<I", 0), BAD_TENSOR),
    "num_layers 0": (set_header("HDR_NUM_LAYERS", "<I", 0), BAD_HEADER),
    "num_layers 17": (set_header("HDR_NUM_LAYERS", "<I", 17), BAD_HEADER),
    "num_layers 2**32-1": (set_header("HDR_NUM_LAYERS", "<I", 2**32 - 1), BAD_HEADER),
    "num_layers 3": (set_header("HDR_NUM_LAYERS", "<I", 3), BAD_TENSOR),
    "num_directions 0": (set_header("HDR_NUM_DIRECTIONS", "<I", 0), BAD_HEADER),
    "num_directions 3": (set_header("HDR_NUM_DIRECTIONS", "<I", 3), BAD_HEADER),
    "num_directions 2": (set_header("HDR_NUM_DIRECTIONS", "<I", 2), BAD_TENSOR),
    "head_size 2**31": (set_header("HDR_HEAD_SIZE", "<I", BIG), BAD_HEADER),
    "head_size 0 with activation": (set_header("HDR_HEAD_SIZE", "<I", 0), BAD_HEADER),
    "head_size 3": (set_header("HDR_HEAD_SIZE", "<I", 3), BAD_TENSOR),
    "head_activation 5": (set_header("HDR_HEAD_ACTIVATION", "<I", 5), BAD_HEADER),
    "layer 0 dtype 4": (lambda d: put(d, FORMAT["HDR_LAYER_DTYPES"], "<B", 4), BAD_HEADER),  # past int8-a16
    "layer 0 int8-a16 but float tensors": (lambda d: put(d, FORMAT["HDR_LAYER_DTYPES"], "<B", 3), BAD_TENSOR),
    "layer 0 dtype 255": (lambda d: put(d, FORMAT["HDR_LAYER_DTYPES"], "<B", 255), BAD_HEADER),
    "layer 1 int8 but float tensors": (lambda d: put(d, FORMAT["HDR_LAYER_DTYPES"] + 1, "<B", 1), BAD_TENSOR),
    "unused layer dtype 1": (lambda d: put(d, FORMAT["HDR_LAYER_DTYPES"] + 9, "<B", 1), BAD_HEADER),
    "tensor_count 0": (set_header("HDR_TENSOR_COUNT", "<I", 0), BAD_HEADER),
    "tensor_count 2**32-1": (set_header("HDR_TENSOR_COUNT", "<I", 2**32 - 1), BAD_HEADER),
    "tensor_count 257, header_size to match": (
        lambda d: put(put(d, FORMAT["HDR_TENSOR_COUNT"], "<I", 257), FORMAT["HDR_HEADER_SIZE"], "<I", 128 + 32 * 257),
        BAD_HEADER),
    "header_size off by 32": (lambda d: put(d, FORMAT["HDR_HEADER_SIZE"], "<I", len(table(d)) * 32 + 160), BAD_HEADER),
    "file_size 2**64-1": (set_header("HDR_FILE_SIZE", "<Q", 2**64 - 1), TRUNCATED),
    "file_size 2**63": (set_header("HDR_FILE_SIZE", "<Q", 2**63), TRUNCATED),
    "file_size + 64": (lambda d: put(d, FORMAT["HDR_FILE_SIZE"], "<Q", len(d) + 64), TRUNCATED),
    "file_size 0": (set_header("HDR_FILE_SIZE", "<Q", 0), BAD_HEADER),
    "file_size below header": (set_header("HDR_FILE_SIZE", "<Q", 100), BAD_HEADER),
    "file_size cuts the last tensor": (lambda d: put(d, FORMAT["HDR_FILE_SIZE"], "<Q", len(d) - 64), BAD_TENSOR),
    "offset past the end": (lambda d: put(d, entry(0, "TENSOR_OFFSET"), "<Q", len(d) + 64), BAD_TENSOR),
    "offset 2**64-64": (set_entry("TENSOR_OFFSET", "<Q", 2**64 - 64), BAD_TENSOR),
    "offset 2**63": (set_entry("TENSOR_OFFSET", "<Q", 2**63), BAD_TENSOR),
    "offset misaligned": (lambda d: put(d, entry(0, "TENSOR_OFFSET"), "<Q", table(d)[0]["offset"] + 4), BAD_TENSOR),
    "offset 0 (inside the header)": (set_entry("TENSOR_OFFSET", "<Q", 0), BAD_TENSOR),
    "tensors overlap": (overlap_second_with_first, BAD_TENSOR),
    "rows 2**31": (set_entry("TENSOR_ROWS", "<I", BIG), BAD_TENSOR),
    "cols 2**31": (set_entry("TENSOR_COLS", "<I", BIG), BAD_TENSOR),
    "rows*cols overflows 64 bits": (
        lambda d: put(put(d, entry(0, "TENSOR_ROWS"), "<I", 2**32 - 1), entry(0, "TENSOR_COLS"), "<I", 2**32 - 1),
        BAD_TENSOR),
    "rows 0": (set_entry("TENSOR_ROWS", "<I", 0), BAD_TENSOR),
    "rows and cols swapped": (swap_rows_cols, BAD_TENSOR),
    "role 0": (set_entry("TENSOR_ROLE", "<I", 0), BAD_TENSOR),
    "role 6 (int8 scales) in a float layer": (set_entry("TENSOR_ROLE", "<I", 6), BAD_TENSOR),
    "role 2**32-1": (set_entry("TENSOR_ROLE", "<I", 2**32 - 1), BAD_TENSOR),
    "index of a layer that does not exist": (set_entry("TENSOR_INDEX", "<I", 4), BAD_TENSOR),
    "index of a reverse direction": (set_entry("TENSOR_INDEX", "<I", 1), BAD_TENSOR),
    "index 2**31": (set_entry("TENSOR_INDEX", "<I", BIG), BAD_TENSOR),
    "tensor dtype int8": (set_entry("TENSOR_DTYPE", "<I", FORMAT["DTYPE_I8_BLOCKED"]), BAD_TENSOR),
    "tensor dtype 99": (set_entry("TENSOR_DTYPE", "<I", 99), BAD_TENSOR),
    "tensor dtype 0": (set_entry("TENSOR_DTYPE", "<I", 0), BAD_TENSOR),
    "entry reserved": (lambda d: put(d, entry(2, "TENSOR_COLS") + 4, "<I", 1), BAD_TENSOR),
    "duplicated entry": (duplicate_entry, BAD_TENSOR),
    "missing entry": (drop_last_entry, BAD_TENSOR),
    "NaN weight": (put_float("ROLE_WEIGHT", float("nan")), NONFINITE_WEIGHT),
    "inf bias": (put_float("ROLE_BIAS", float("inf")), NONFINITE_WEIGHT),
    "-inf projection": (put_float("ROLE_PROJ", float("-inf")), NONFINITE_WEIGHT),
    "NaN head weight": (put_float("ROLE_HEAD_W", float("nan")), NONFINITE_WEIGHT),
    "inf head bias": (put_float("ROLE_HEAD_B", float("inf")), NONFINITE_WEIGHT),
}


@pytest.mark.parametrize("name", MUTATIONS)
def test_malformed_field(data, name):
    mutate, status = MUTATIONS[name]
    bad = crc_fixed(mutate(data))
    assert bad != data
    assert status_of(bad) == status


@pytest.mark.parametrize("offset", range(FORMAT["HDR_SIZE"] - 40, FORMAT["HDR_SIZE"]))
def test_nonzero_reserved_header_byte(data, offset):
    assert offset >= FORMAT["HDR_LAYER_DTYPES"] + FORMAT["MAX_LAYERS"]
    assert status_of(crc_fixed(put(data, offset, "<B", 0x80))) == BAD_HEADER


def test_field_changes_without_crc_fix_are_checksum_errors(data):
    assert status_of(put(data, FORMAT["HDR_HIDDEN_SIZE"], "<I", BIG)) == CHECKSUM
    assert status_of(put_float("ROLE_WEIGHT", float("nan"))(data)) == CHECKSUM


def test_crc_fixed_unchanged_file_still_opens(data):
    assert crc_fixed(data) == data
    assert status_of(data) == 0


def test_old_format_version_says_convert_again(data):
    """A file of format version 1 (lstm_embed 0.1-0.2: fp32 weights row-major) is refused with a message that
    says what to do; a newer one asks for a newer lstm_embed."""
    old = crc_fixed(set_header("HDR_VERSION", "<I", 1)(data))
    with pytest.raises(ModelFormatError, match=r"format version 1 .*Convert it again") as err:
        Model.from_bytes(old)
    assert err.value.args[1] == UNSUPPORTED_VERSION
    newer = crc_fixed(set_header("HDR_VERSION", "<I", FORMAT["VERSION"] + 1)(data))
    with pytest.raises(ModelFormatError, match="upgrade lstm_embed"):
        Model.from_bytes(newer)
