"""``lstm-embed export-c``: a model file as C source for a device's flash (see docs/cli.md, docs/c_library.md).

Writes two files:

- ``model_data.c``: ``const unsigned char NAME[NAME_LEN]``, aligned to 64 bytes by a portable alignment
  macro (GCC/Clang ``__attribute__((aligned))``, C11 ``_Alignas``, IAR ``#pragma data_alignment``, ARM
  Compiler 5 ``__align``, MSVC ``__declspec(align)``), and ``const size_t NAME_len``;
- ``model_data.h``: the sizes a device needs for this model at compile time (the array's length, state
  bytes per stream, workspaces of ``lstm_run`` and ``lstm_step_many``, input and output widths), so that
  every buffer can be a static array.

The model is validated first by opening it (``Model.from_bytes``): a file the library refuses is never
exported.
"""
from __future__ import annotations

import ctypes
import os
import re
from dataclasses import dataclass

ALIGNMENT = 64
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BYTES_PER_LINE = 16


@dataclass
class Sizes:
    """Per-model sizes in bytes (all target-independent: the core computes them from float counts)."""

    state: int
    run_fixed: int | None = None        # lstm_run_workspace_size(m, k) == run_fixed + k * run_per_step
    run_per_step: int | None = None
    many_fixed: int | None = None       # lstm_step_many_workspace_size(m, n) == many_fixed + n * many_per_stream
    many_per_stream: int | None = None


def default_name(output: str) -> str:
    """The array's name from the output file's name: ``model_data.c`` -> ``model_data``."""
    stem = os.path.splitext(os.path.basename(output))[0]
    name = re.sub(r"[^A-Za-z0-9_]", "_", stem)
    return name if _IDENT.match(name) else f"m_{name}"


def _workspace_sizes(data: bytes) -> tuple[int, int, int, int] | None:
    """(run_fixed, run_per_step, many_fixed, many_per_stream) from the core's own size functions.

    The Python Model does not expose lstm_run_workspace_size / lstm_step_many_workspace_size, so they are
    called through the extension module's exported C symbols (the public API has default visibility).
    Returns None when they cannot be reached; the header then says to ask at run time.
    """
    try:
        from lstm_embed import _lstm

        lib = ctypes.CDLL(_lstm.__file__)
        open_, close = lib.lstm_model_open, lib.lstm_model_close
        run_ws, many_ws = lib.lstm_run_workspace_size, lib.lstm_step_many_workspace_size
    except (OSError, AttributeError, ImportError):
        return None
    open_.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p)]
    open_.restype = ctypes.c_int
    close.argtypes = [ctypes.c_void_p]
    close.restype = None
    for f in (run_ws, many_ws):
        f.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        f.restype = ctypes.c_size_t
    buf = ctypes.create_string_buffer(data, len(data))  # malloc'd: aligned enough (>= 8 bytes)
    model = ctypes.c_void_p()
    if open_(ctypes.addressof(buf), len(data), ctypes.byref(model)) != 0:
        return None
    try:
        r1, r2 = run_ws(model, 1), run_ws(model, 2)
        m1, m2 = many_ws(model, 1), many_ws(model, 2)
    finally:
        close(model)
    return r1 - (r2 - r1), r2 - r1, m1 - (m2 - m1), m2 - m1


def model_sizes(data: bytes, model) -> Sizes:
    sizes = Sizes(state=model.state_size)
    ws = _workspace_sizes(data)
    if ws is not None:
        sizes.run_fixed, sizes.run_per_step, sizes.many_fixed, sizes.many_per_stream = ws
    return sizes


def _array_lines(data: bytes) -> str:
    hexes = [f"0x{b:02x}" for b in data]
    return "\n".join("    " + ", ".join(hexes[i:i + _BYTES_PER_LINE]) + ","
                     for i in range(0, len(hexes), _BYTES_PER_LINE))


def render(data: bytes, model, name: str, header_name: str, source: str = "") -> tuple[str, str]:
    """The texts of model_data.c and model_data.h for the model `data` (already opened as `model`)."""
    if not _IDENT.match(name):
        raise ValueError(f"--name {name!r} is not a C identifier")
    up = name.upper()
    sizes = model_sizes(data, model)
    guard = re.sub(r"[^A-Za-z0-9]", "_", header_name).upper()
    origin = f" from {source}" if source else ""
    desc = (f"{model.dtype}, input {model.input_size}, hidden {model.hidden_size}"
            f"{f', proj {model.proj_size}' if model.proj_size else ''}, {model.num_layers} layer(s) x "
            f"{model.num_directions} direction(s), "
            f"{f'head {model.head_size} ({model.head_activation})' if model.head_size else 'no head'}, "
            f"output {model.output_size}")

    if sizes.run_per_step is not None:
        ws = f"""
/* Workspace of lstm_run for a chunk of `steps` timesteps: lstm_run_workspace_size(model, steps). */
#define {up}_RUN_WORKSPACE_SIZE(steps) ((size_t){sizes.run_fixed}u + (size_t)(steps) * {sizes.run_per_step}u)
#define {up}_RUN_WORKSPACE_PER_STEP {sizes.run_per_step}u
/* Workspace of lstm_step_many for n streams: lstm_step_many_workspace_size(model, n). */
#define {up}_STEP_MANY_WORKSPACE_SIZE(n) ((size_t){sizes.many_fixed}u + (size_t)(n) * {sizes.many_per_stream}u)
#define {up}_STEP_MANY_WORKSPACE_PER_STREAM {sizes.many_per_stream}u
"""
    else:
        ws = """
/* Workspace sizes of lstm_run / lstm_step_many: not available from this lstm_embed build; ask
 * lstm_run_workspace_size() and lstm_step_many_workspace_size() at run time. */
"""
    header = f"""/* {header_name} - generated by `lstm-embed export-c`{origin}. Do not edit.
 * Model: {desc}.
 * Sizes a device needs for this model, at compile time (the same on every target):
 *
 *     static unsigned char mem[LSTM_MODEL_MEM_SIZE];
 *     static unsigned char state_buf[{up}_STATE_SIZE];
 *     lstm_model *m;  lstm_state *s;
 *     lstm_model_init(mem, sizeof mem, {name}, {up}_LEN, &m);
 *     lstm_state_init(m, state_buf, sizeof state_buf, &s);
 *
 * The model descriptor's memory is LSTM_MODEL_MEM_SIZE bytes (lstm.h: it depends on the target's pointer
 * size, so it is not a number here); lstm_model_init accepts it at any alignment.
 */
#ifndef {guard}
#define {guard}

#include <stddef.h>

#ifdef __cplusplus
extern "C" {{
#endif

/* The model file: {len(data)} bytes, 64-byte aligned, in read-only memory (flash). */
#define {up}_LEN {len(data)}u
extern const unsigned char {name}[{up}_LEN];
extern const size_t {name}_len;

#define {up}_INPUT_SIZE {model.input_size}u
#define {up}_OUTPUT_SIZE {model.output_size}u
#define {up}_HIDDEN_SIZE {model.hidden_size}u
#define {up}_NUM_LAYERS {model.num_layers}u
#define {up}_FINGERPRINT 0x{model.fingerprint:016x}ull

/* Bytes of one stream's state: lstm_state_size(model); any alignment. */
#define {up}_STATE_SIZE {sizes.state}u
{ws}
#ifdef __cplusplus
}}
#endif
#endif /* {guard} */
"""
    source_text = f"""/* generated by `lstm-embed export-c`{origin}. Do not edit.
 * Model: {desc}; {len(data)} bytes. */
#include "{header_name}"

/* 64-byte alignment in the syntax of each compiler (lstm_model_open needs 4; 64 suits every kernel). */
#if defined(__IAR_SYSTEMS_ICC__)
#define {up}_ALIGN_BEGIN _Pragma("data_alignment={ALIGNMENT}")
#define {up}_ALIGN_END
#elif defined(__CC_ARM)
#define {up}_ALIGN_BEGIN __align({ALIGNMENT})
#define {up}_ALIGN_END
#elif defined(__GNUC__) || defined(__clang__)
#define {up}_ALIGN_BEGIN
#define {up}_ALIGN_END __attribute__((aligned({ALIGNMENT})))
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define {up}_ALIGN_BEGIN _Alignas({ALIGNMENT})
#define {up}_ALIGN_END
#elif defined(_MSC_VER)
#define {up}_ALIGN_BEGIN __declspec(align({ALIGNMENT}))
#define {up}_ALIGN_END
#else /* unknown compiler: no alignment; lstm_model_open says LSTM_E_MISALIGNED if not on 4 bytes */
#define {up}_ALIGN_BEGIN
#define {up}_ALIGN_END
#endif

{up}_ALIGN_BEGIN const unsigned char {name}[{up}_LEN] {up}_ALIGN_END = {{
{_array_lines(data)}
}};

const size_t {name}_len = {up}_LEN;
"""
    return source_text, header


def export_c(model_path: str, output: str, name: str | None = None, header: str | None = None) -> tuple[str, str]:
    """Validate the model file `model_path` and write `output` (.c) and its header; returns both paths."""
    from lstm_embed._lstm import Model

    with open(model_path, "rb") as f:
        data = f.read()
    model = Model.from_bytes(data)  # raises ModelFormatError & co. for a file the library refuses
    name = name or default_name(output)
    header = header or (os.path.splitext(output)[0] + ".h")
    c_text, h_text = render(data, model, name, os.path.basename(header), os.path.basename(model_path))
    for path, text in ((header, h_text), (output, c_text)):
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise FileNotFoundError(2, "no such directory", folder)
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="ascii", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    return output, header
