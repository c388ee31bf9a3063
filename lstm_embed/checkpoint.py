"""Reading PyTorch checkpoint files and finding the LSTM (and its dense head) inside them.

    ckpt = load_checkpoint("model.pt")                  # or lstm="encoder.lstm", head="decoder.fc" / "none"
    data = ckpt.convert(head_activation="softmax")      # model-file bytes
    print(*ckpt.notes, *ckpt.warnings, sep="\\n")       # what was chosen, what was left out

Files accepted: ``torch.save`` of a state_dict, of a whole ``nn.Module``, or of any dict/list nesting
those (a training checkpoint with optimizer state, epoch, ...); and TorchScript archives
(``torch.jit.save``). Every tensor is found by its path (``model_state.encoder.lstm.weight_ih_l0``); the
tensors sharing a prefix are one module.

Choice rules (nothing is guessed among several candidates):

- LSTM: a prefix holding ``weight_ih_l0`` + ``weight_hh_l0`` (``nn.LSTM``) or ``weight_ih`` + ``weight_hh``
  (``nn.LSTMCell``) with 4 gates. Exactly one must exist, else pick one with ``lstm=PREFIX``.
- Head, when ``head`` is not given: the ``nn.Linear`` layers whose tensors are exactly ``weight`` [O, W]
  and ``bias`` [O] with W the LSTM's output width (hidden or proj size, times 2 if bidirectional). None:
  no head; one: that one (said in ``notes``); several: pick with ``head=PREFIX`` or ``head="none"``.
  An explicit ``head=PREFIX`` may also name a Linear without bias.
- A prefix given by the user matches a module whose path equals it or ends with ``"." + prefix``.
"""
from __future__ import annotations

import os
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from lstm_embed._lstm import FORMAT
from lstm_embed.convert import Conversion, activation_name, recurrent_kind, spec_from_state_dict, spec_to_bytes
from lstm_embed.errors import ConversionError
from lstm_embed.format import ModelSpec

_MAX_DEPTH = 12  # nesting levels searched for tensors in a checkpoint
_LISTED = 8  # names shown before "... and N more"
_LAYER = re.compile(r"_l(\d+)(_reverse)?$")


class ChoiceError(ConversionError):
    """The user must choose: several LSTMs or heads fit, or a given prefix matches none of them."""


@dataclass
class _Module:
    """The tensors sharing one prefix, i.e. the parameters of one torch module."""

    prefix: str
    container: str  # path of the dict holding the tensors (the model's state_dict)
    tensors: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str | None:
        return recurrent_kind({k: tuple(v.shape) for k, v in self.tensors.items()})

    @property
    def label(self) -> str:
        return repr(self.prefix) if self.prefix else "(top level)"

    def describe(self) -> str:
        """One line for notes and candidate lists."""
        t = self.tensors
        kind = self.kind
        if kind in ("LSTM", "GRU", "RNN"):
            layers = 1 + max(int(m.group(1)) for m in map(_LAYER.search, t) if m)
            bidi = ", bidirectional" if "weight_ih_l0_reverse" in t else ""
            proj = f", proj {t['weight_hr_l0'].shape[0]}" if "weight_hr_l0" in t else ""
            hidden = t["weight_hh_l0"].shape[1] if not proj else t["weight_hr_l0"].shape[1]
            return (f"{self.label}: nn.{kind} input {t['weight_ih_l0'].shape[1]}, hidden {hidden}{proj}, "
                    f"{layers} layer{'s' * (layers > 1)}{bidi}")
        if kind in ("LSTMCell", "GRUCell", "RNNCell"):
            return f"{self.label}: nn.{kind} input {t['weight_ih'].shape[1]}, hidden {t['weight_hh'].shape[1]}"
        if _is_linear(self):
            w = t["weight"]
            return f"{self.label}: Linear {w.shape[1]} -> {w.shape[0]}{'' if 'bias' in t else ' (no bias)'}"
        return f"{self.label}: {', '.join(sorted(t))}"


def _is_linear(module: _Module) -> bool:
    t = module.tensors
    return ("weight" in t and set(t) <= {"weight", "bias"} and t["weight"].ndim == 2
            and ("bias" not in t or tuple(t["bias"].shape) == (t["weight"].shape[0],)))


def _fits_head(module: _Module, width: int) -> bool:
    return _is_linear(module) and "bias" in module.tensors and module.tensors["weight"].shape[1] == width


@dataclass
class Checkpoint:
    """The LSTM (and optional head) chosen in a checkpoint, with notes on how they were found.

    ``lstm_state`` / ``head_state`` hold the module's own parameter names (``weight_ih_l0``, ``weight``).
    ``notes`` say what the file was, what was chosen and why; ``warnings`` name model tensors that are
    not converted (other layers of the model, which the converted file does not run).
    """

    source: str
    form: str
    lstm_prefix: str
    lstm_state: dict[str, Any]
    head_prefix: str | None = None
    head_state: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def spec(self, head_activation: Any = None) -> ModelSpec:
        """The ModelSpec of the chosen LSTM and head; ``head_activation`` as in ``convert_torch``."""
        name = activation_name(head_activation)
        if name != "none" and self.head_state is None:
            raise ChoiceError(f"head activation {name!r} needs a head, but none was selected in "
                              f"{self.source}: name the Linear layer with --head PREFIX")
        return spec_from_state_dict(self.lstm_state, self.head_state, name)

    def convert(self, head_activation: Any = None, dtype: str = "float32", calibration=None,
                tolerance: float | None = None, *, report: bool = False) -> bytes | Conversion:
        """Model-file bytes (see ``lstm_embed.convert_torch`` for ``dtype``, ``calibration``, ``tolerance``);
        with ``report=True`` a ``Conversion`` (bytes, per-layer dtypes, calibration report, warnings)."""
        return spec_to_bytes(self.spec(head_activation), dtype, calibration, tolerance, report=report)

    def torch_modules(self):
        """Fresh float32 ``nn.LSTM`` / ``nn.LSTMCell`` and ``nn.Linear`` (or None) holding these weights,
        loaded with ``load_state_dict(strict=True)``: PyTorch's own reading of the same tensors."""
        import torch
        import torch.nn as nn

        spec = self.spec()
        bias = "bias_ih" in self.lstm_state or "bias_ih_l0" in self.lstm_state
        if "weight_ih" in self.lstm_state:
            lstm = nn.LSTMCell(spec.input_size, spec.hidden_size, bias=bias)
        else:
            lstm = nn.LSTM(spec.input_size, spec.hidden_size, len(spec.layers), bias=bias,
                           bidirectional=spec.num_directions == 2, proj_size=spec.proj_size)
        lstm.load_state_dict({k: torch.as_tensor(v).detach().float().cpu() for k, v in self.lstm_state.items()})
        head = None
        if self.head_state is not None:
            weight = self.head_state["weight"]
            head = nn.Linear(weight.shape[1], weight.shape[0], bias="bias" in self.head_state)
            head.load_state_dict({k: torch.as_tensor(v).detach().float().cpu()
                                  for k, v in self.head_state.items()})
        return lstm.eval(), None if head is None else head.eval()


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_LISTED])
    return shown + (f" and {len(items) - _LISTED} more" if len(items) > _LISTED else "")


def _unsafe_globals(path: str) -> list[str]:
    """Classes a torch.save file refers to beyond plain tensors (best effort, for messages)."""
    import torch

    try:
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # any failure here only makes the message less specific
        return []


def read_torch_file(path: str | os.PathLike, weights_only: bool = False) -> tuple[Any, list[str]]:
    """Load a torch.save or torch.jit.save file on the CPU: ``(object, notes)``.

    ``torch.load(weights_only=True)`` is tried first; files holding pickled classes (a whole module)
    then need full unpickling, which can run code from the file: ``weights_only=True`` here refuses that.
    Raises ``FileNotFoundError`` and ``ConversionError`` with what to do.
    """
    import torch

    path = os.fspath(path)
    with open(path, "rb") as f:
        start = f.read(16)
    if start.startswith(FORMAT["MAGIC"]):
        raise ConversionError(f"{path} is already an lstm_embed model file, not a PyTorch checkpoint; "
                              f"inspect it with `lstm-embed info {path}`")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
        if any(n.endswith("constants.pkl") for n in names):
            try:
                return torch.jit.load(path, map_location="cpu"), ["TorchScript archive, read with torch.jit.load"]
            except Exception as e:
                raise ConversionError(f"{path} looks like a TorchScript archive but torch.jit.load failed: "
                                      f"{e}") from None
        if not any(n.endswith("data.pkl") for n in names):
            raise ConversionError(f"{path} is a zip archive but not a PyTorch file (torch.save and "
                                  "torch.jit.save write one holding data.pkl or constants.pkl)")
    elif not start.startswith(b"\x80"):  # neither the zip format nor the legacy pickle format
        raise ConversionError(f"{path} is not a PyTorch file: expected the output of torch.save(...) or "
                              f"torch.jit.save(...), but it starts with {start[:8]!r}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True), ["read with torch.load(weights_only=True)"]
    except pickle.UnpicklingError as e:
        refused = e
    except Exception as e:
        raise ConversionError(f"{path} is not a readable PyTorch file: torch.load failed with "
                              f"{type(e).__name__}: {e}") from None
    classes = _unsafe_globals(path)
    needs = f"it refers to {_listing(classes)}" if classes else f"torch said: {str(refused).splitlines()[0]}"
    if weights_only:
        raise ConversionError(f"{path} cannot be read with weights_only=True: {needs}. Full unpickling can "
                              "run code from the file; if you trust it, convert without --weights-only. "
                              "Better: save the weights only, torch.save(model.state_dict(), PATH)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except (AttributeError, ImportError) as e:
        raise ConversionError(
            f"{path} holds a pickled object whose class cannot be imported here ({e}). "
            f"torch.load(weights_only=True) refused the file because {needs}; full unpickling "
            "(weights_only=False) needs the module that defined those classes to be importable: run the "
            "conversion where the training code is importable (its directory on PYTHONPATH, or from Python "
            "with lstm_embed.checkpoint.load_checkpoint); a class defined in a training script's __main__ "
            "cannot be found at all. Simplest fix: save the weights only with "
            "torch.save(model.state_dict(), PATH) and convert that file") from None
    except Exception as e:
        raise ConversionError(f"{path} is not a readable PyTorch file: torch.load failed with "
                              f"{type(e).__name__}: {e}") from None
    return obj, [f"torch.load(weights_only=True) refused the file ({needs}); it was read with full "
                 "unpickling, which runs code from the file: only convert files you trust "
                 "(--weights-only refuses such files)"]


def _walk(obj: Any, path: str = "", depth: int = 0) -> Iterator[tuple[str, str, Any]]:
    """Every tensor in ``obj`` as (path of its dict, key in that dict, tensor). Modules count as their
    state_dict; dicts, lists and tuples are searched to ``_MAX_DEPTH`` levels."""
    import torch

    if depth > _MAX_DEPTH:
        return
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, Mapping):
        items = [(str(k), v) for k, v in obj.items()]
    elif isinstance(obj, (list, tuple)):
        items = [(str(i), v) for i, v in enumerate(obj)]
    else:
        return
    for key, value in items:
        if isinstance(value, torch.Tensor):
            yield path, key, value
        else:
            yield from _walk(value, f"{path}.{key}" if path else key, depth + 1)


def _modules(obj: Any) -> list[_Module]:
    """The tensors of ``obj`` grouped by prefix, in file order."""
    found: dict[str, _Module] = {}
    for container, key, tensor in _walk(obj):
        full = f"{container}.{key}" if container else key
        prefix, _, name = full.rpartition(".")
        found.setdefault(prefix, _Module(prefix, container)).tensors[name] = tensor
    return list(found.values())


def _match(modules: list[_Module], prefix: str) -> list[_Module]:
    """Modules named by a user's prefix: an exact path wins, else every path ending in ".prefix"."""
    exact = [m for m in modules if m.prefix == prefix]
    return exact or [m for m in modules if prefix and m.prefix.endswith("." + prefix)]


def _candidates(modules: list[_Module]) -> str:
    return "".join(f"\n  {m.describe()}" for m in modules) or " none"


def _pick_lstm(modules: list[_Module], source: str, choice: str | None) -> _Module:
    recurrent = [m for m in modules if m.kind]
    lstms = [m for m in recurrent if m.kind in ("LSTM", "LSTMCell")]
    if choice is not None:
        matched = _match(modules, choice)
        if not matched:
            raise ChoiceError(f"no module {choice!r} in {source}; the LSTMs there:{_candidates(lstms)}")
        if len(matched) > 1:
            raise ChoiceError(f"{choice!r} matches several modules in {source}; give more of the path:"
                              f"{_candidates(matched)}")
        if not matched[0].kind:
            raise ChoiceError(f"{matched[0].label} in {source} is not an LSTM ({matched[0].describe()}); "
                              f"the LSTMs there:{_candidates(lstms)}")
        return matched[0]
    if len(lstms) == 1:
        return lstms[0]
    if lstms:
        raise ChoiceError(f"{source} holds {len(lstms)} LSTMs; choose one with --lstm PREFIX (lstm= in "
                          f"Python):{_candidates(lstms)}")
    if recurrent:
        kinds = sorted({m.kind if m.kind != "unknown recurrent" else "this recurrent layer" for m in recurrent})
        raise ConversionError(f"{' and '.join(kinds)} is not supported: {source} holds no LSTM, only"
                              f"{_candidates(recurrent)}\nlstm_embed converts nn.LSTM and nn.LSTMCell only")
    count = sum(len(m.tensors) for m in modules)
    names = _listing([f"{m.prefix}.{k}" if m.prefix else k for m in modules for k in m.tensors])
    raise ConversionError(f"no LSTM inside {source}: looked for nn.LSTM tensors (weight_ih_l0, weight_hh_l0, "
                          "...) and nn.LSTMCell tensors (weight_ih, weight_hh) under any prefix; "
                          + (f"the file holds {count} tensors: {names}" if count else "the file holds no tensors"))


def _pick_head(modules: list[_Module], lstm: _Module, width: int, source: str,
               choice: str | None) -> tuple[_Module | None, str]:
    """The head module (or None) and a note saying how it was chosen."""
    others = [m for m in modules if m is not lstm]
    fitting = [m for m in others if _fits_head(m, width)]
    if choice == "none":
        return None, "no head (--head none)"
    if choice is not None:
        matched = _match(modules, choice)
        if len(matched) != 1:
            what = "matches several modules" if matched else "matches no module"
            raise ChoiceError(f"--head {choice!r} {what} in {source}; Linear layers taking the LSTM's output "
                              f"width {width}:{_candidates(fitting)}")
        if not _is_linear(matched[0]):
            raise ChoiceError(f"{matched[0].label} is not an nn.Linear ({matched[0].describe()}); Linear layers "
                              f"taking the LSTM's output width {width}:{_candidates(fitting)}")
        return matched[0], f"head {matched[0].describe()} (chosen with --head)"
    if len(fitting) > 1:
        raise ChoiceError(f"{source} holds {len(fitting)} Linear layers that take the LSTM's output width "
                          f"{width}; choose the head with --head PREFIX, or --head none (head= in Python):"
                          f"{_candidates(fitting)}")
    if fitting:
        return fitting[0], (f"head {fitting[0].describe()}: the only Linear layer (weight and bias) taking the "
                            f"LSTM's output width {width}; --head none leaves it out")
    return None, (f"no head: no Linear layer (weight and bias) takes the LSTM's output width {width}; "
                  "name one with --head PREFIX")


def _form(obj: Any) -> str:
    import torch

    if isinstance(obj, torch.jit.ScriptModule):
        return "TorchScript module"
    if isinstance(obj, torch.nn.Module):
        return f"whole pickled module ({type(obj).__name__})"
    if isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return "state_dict"
    return f"checkpoint {type(obj).__name__}"


def find_lstm(obj: Any, lstm: str | None = None, head: str | None = None, source: str = "the checkpoint",
              notes: list[str] | None = None) -> Checkpoint:
    """Find the LSTM and its head in a loaded object (state_dict, module, nested checkpoint dict).

    ``lstm``/``head``: prefixes chosen by the user (``head="none"``: no head); see the module docstring
    for the rules. Raises ``ChoiceError`` when the user must choose, ``ConversionError`` otherwise.
    """
    modules = _modules(obj)
    chosen = _pick_lstm(modules, source, lstm)
    state = dict(chosen.tensors)
    spec = spec_from_state_dict(state)  # validates the LSTM and gives its output width
    width = (spec.proj_size or spec.hidden_size) * spec.num_directions
    head_module, head_note = _pick_head(modules, chosen, width, source, head)
    form = _form(obj)
    ckpt = Checkpoint(source=source, form=form, lstm_prefix=chosen.prefix, lstm_state=state,
                      notes=[*(notes or []), f"form: {form}", f"LSTM {chosen.describe()}", head_note])
    if head_module is not None:
        ckpt.head_prefix, ckpt.head_state = head_module.prefix, dict(head_module.tensors)
    used = {id(chosen), id(head_module)}
    model_rest = [m for m in modules if id(m) not in used and m.container == chosen.container]
    if model_rest:
        ckpt.warnings.append("not converted, other layers of the model: "
                             + _listing([f"{m.label} ({len(m.tensors)} tensors)" for m in model_rest]))
    elsewhere = sorted({m.prefix.split(".")[0] for m in modules
                        if id(m) not in used and m.container != chosen.container})
    if elsewhere:
        ckpt.notes.append("ignored, outside the model's state_dict: " + _listing(elsewhere))
    return ckpt


def load_checkpoint(path: str | os.PathLike, lstm: str | None = None, head: str | None = None,
                    weights_only: bool = False) -> Checkpoint:
    """Read a checkpoint file and find the LSTM and its head (see ``find_lstm`` and ``read_torch_file``)."""
    obj, notes = read_torch_file(path, weights_only)
    return find_lstm(obj, lstm, head, source=os.fspath(path), notes=notes)
