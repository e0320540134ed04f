"""Reading, loading and writing checkpoints of the zoo - safely, strictly, atomically.

The standard layout (the CRD / RepDistiller teachers, and this project's own files) is a pickled dict::

    {"model": state_dict, "epoch": int, "accuracy": top-1 %, "optimizer": optimizer.state_dict() or None,
     "arch": "resnet32x4", "num_classes": 100, ...}

The published teachers lack ``arch`` / ``num_classes`` and were written by old PyTorch on GPU, sometimes with
numpy scalars inside. They are read with ``torch.load(..., map_location="cpu", weights_only=True)`` and the
smallest allow-list those files need (numpy's scalar and dtype reconstructors, argparse.Namespace); anything
else in the pickle - in particular a payload that would run code - is refused with
:class:`UnsafeCheckpointError`. There is no fallback to unrestricted unpickling.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import os
import pickle
import re
from collections.abc import Iterator, Mapping, Sequence
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from wttm_core._checks import check_int, check_number

from ..rundir import write_bytes_atomic
from .registry import MODEL_NAMES, build_model, check_model_name

PathLike = str | os.PathLike[str]

#: Keys of the standard layout written by :func:`save_checkpoint`.
RESERVED_KEYS = ("model", "epoch", "accuracy", "optimizer", "arch", "num_classes")
#: Key prefixes added by DataParallel / DistributedDataParallel and by ``torch.compile``; stripped on read.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
#: Folder-name suffix of the published teachers: ``<arch>_vanilla/ckpt_epoch_240.pth``.
VANILLA_SUFFIX = "_vanilla"
#: How many keys an error message lists before summarising the rest as a count.
MAX_LISTED_KEYS = 8


class CheckpointMismatchError(ValueError):
    """A state_dict does not fit the architecture it is loaded into (strict loading).

    Attributes ``missing`` (in the model, not in the file), ``unexpected`` (in the file, not in the model) and
    ``mismatched`` (``key -> (file shape, model shape)``) hold the full lists; the message shows the first few.
    """

    def __init__(
        self,
        message: str,
        *,
        missing: Sequence[str] = (),
        unexpected: Sequence[str] = (),
        mismatched: Mapping[str, tuple[tuple[int, ...], tuple[int, ...]]] | None = None,
    ) -> None:
        super().__init__(message)
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.mismatched = dict(mismatched or {})


class DigestMismatchError(ValueError):
    """The file's SHA-256 differs from the digest it must have; nothing from it was used."""


class UnsafeCheckpointError(pickle.UnpicklingError):
    """The file needs Python objects outside the allow-list to unpickle; it was not loaded (nothing ran)."""


# --- reading ----------------------------------------------------------------------------------------------


def _numpy_scalar_reconstructor() -> Any:
    try:  # numpy >= 2
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray  # type: ignore[no-redef]
    return multiarray.scalar


#: numpy dtype classes whose instances may appear in the published files (scalars saved by old code).
_NUMPY_DTYPE_CLASSES = ("Float64DType", "Float32DType", "Float16DType", "Int64DType", "Int32DType", "BoolDType")


@functools.cache
def allowed_globals() -> tuple[Any, ...]:
    """The allow-list passed to ``torch.serialization.safe_globals`` when reading checkpoints.

    numpy scalars pickle as ``numpy.core.multiarray.scalar(numpy.dtype(...), bytes)`` (``numpy._core`` since
    numpy 2), and rebuilding the dtype needs its class (``numpy.dtypes.Float64DType`` ...); some training
    scripts also stored their ``argparse.Namespace``. None of these can run arbitrary code.
    """
    scalar = _numpy_scalar_reconstructor()
    items: list[Any] = [
        (scalar, "numpy.core.multiarray.scalar"),
        (scalar, "numpy._core.multiarray.scalar"),
        (np.dtype, "numpy.dtype"),
        argparse.Namespace,
    ]
    dtypes = getattr(np, "dtypes", None)  # numpy >= 1.25
    if dtypes is not None:
        items += [getattr(dtypes, name) for name in _NUMPY_DTYPE_CLASSES if hasattr(dtypes, name)]
    return tuple(items)


#: torch's wording when a weights-only load meets an object outside the allow-list (vs. merely corrupt data).
_REFUSED_OBJECT = re.compile(
    r"Unsupported global|unsupported GLOBAL|Can only build|Can only create new object|unrecognized function"
)


#: Lines of torch's weights-only error text that say nothing about this file (advice to unpickle unsafely).
_BOILERPLATE = re.compile(r"^(Weights only load failed|Check the documentation|Please file an issue|\(\d\)|In PyTorch)")


def load_error_reason(text: str) -> str:
    """The first line of torch's error text that is about the file (not its advice to load unsafely)."""
    match = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
    if match:
        return match.group(1).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return next((line for line in lines if not _BOILERPLATE.match(line)), lines[0] if lines else "no details")


def _refused_global(message: str) -> str:
    """The object a refused weights-only load asked for, from torch's error text."""
    match = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", message)
    if match:
        return f"the Python object {match.group(1)}"
    match = re.search(r"(?:Can only build|Can only create new object|unrecognized function)[^\n]*", message)
    return f"an object (torch says: {match.group(0).strip()})" if match else "a non-tensor Python object"


def _strip_wrapper_prefixes(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    state = dict(state)
    for prefix in WRAPPER_PREFIXES:
        if state and all(key.startswith(prefix) for key in state):
            state = {key[len(prefix) :]: value for key, value in state.items()}
    return state


def _verified_source(path: Path, expected_sha256: str | None) -> Path | io.BytesIO:
    """``path`` itself, or - when a digest is expected - its bytes, read once and checked against it (so the
    bytes that are loaded are the bytes that were checked, wherever a link pointed meanwhile)."""
    if expected_sha256 is None:
        return path
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256.lower():
        raise DigestMismatchError(f"{path}: SHA-256 {actual} differs from the known digest {expected_sha256}")
    return io.BytesIO(data)


def read_checkpoint(path: PathLike, *, expected_sha256: str | None = None) -> dict[str, Any]:
    """Read a checkpoint file safely and return it as a dict whose ``"model"`` entry is the state_dict.

    Accepts the standard layout (``{"model": state_dict, "epoch", "accuracy", "optimizer", ...}``, also with
    ``"state_dict"`` instead of ``"model"``) and a bare state_dict (then the result is ``{"model": it}``).
    A ``module.`` (DataParallel) or ``_orig_mod.`` (torch.compile) prefix on every key is stripped. Tensors
    are mapped to the CPU. Other entries are returned as stored (``accuracy`` may be a float, a numpy scalar
    or a tensor; see :func:`stored_accuracy`).

    ``expected_sha256``: the digest the file must have (:class:`DigestMismatchError` otherwise), checked on
    the very bytes that are unpickled.

    Raises FileNotFoundError, :class:`UnsafeCheckpointError` (the pickle needs objects outside the
    allow-list; nothing from it was executed) or ValueError (not a checkpoint of a known layout).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    source = _verified_source(path, expected_sha256)
    try:
        with torch.serialization.safe_globals(list(allowed_globals())):
            obj = torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if _REFUSED_OBJECT.search(text):
            raise UnsafeCheckpointError(
                f"refusing to load {path}: its pickle asks for {_refused_global(text)}, which is not on the "
                "allow-list (tensors, numbers, strings, containers, numpy scalars). wttm never unpickles "
                "arbitrary objects, because that can run code. If you trust the file, re-save its plain "
                "state_dict elsewhere and load that."
            ) from None
        raise ValueError(f"{path} is not a readable PyTorch checkpoint ({load_error_reason(text)})") from None
    except Exception as exc:  # malformed data surfaces as RuntimeError, EOFError, KeyError, ... from torch
        raise ValueError(
            f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}: {load_error_reason(str(exc))})"
        ) from None

    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: expected a dict (checkpoint or state_dict), found {type(obj).__name__}")
    if isinstance(obj.get("model"), Mapping):
        state, rest = obj["model"], {k: v for k, v in obj.items() if k != "model"}
    elif isinstance(obj.get("state_dict"), Mapping):
        state, rest = obj["state_dict"], {k: v for k, v in obj.items() if k != "state_dict"}
    elif obj and all(isinstance(v, Tensor) for v in obj.values()):
        state, rest = obj, {}
    else:
        keys = ", ".join(map(repr, list(obj)[:MAX_LISTED_KEYS]))
        raise ValueError(
            f"{path}: neither the standard layout {{'model': state_dict, 'epoch', 'accuracy', ...}} nor a bare "
            f"state_dict (top-level keys: {keys})"
        )
    bad = [key for key, value in state.items() if not isinstance(key, str) or not isinstance(value, Tensor)]
    if bad:
        raise ValueError(f"{path}: the state_dict holds non-tensor entries: {_format_keys(map(str, bad))}")
    _check_backed(path, state)
    return {**rest, "model": _strip_wrapper_prefixes(state)}


def _check_backed(path: PathLike, state: Mapping[str, Tensor]) -> None:
    """Refuse tensors that claim more elements than their storage holds (a crafted file: a few bytes viewed
    with zero strides as a huge tensor would make whoever builds the matching model allocate gigabytes)."""
    for key, tensor in state.items():
        if tensor.layout is not torch.strided or tensor.is_quantized or tensor.is_nested:
            raise ValueError(f"{path}: state_dict entry {key!r} is a {tensor.layout} tensor; weights are dense")
        needed = tensor.numel() * tensor.element_size()
        if needed > tensor.untyped_storage().nbytes():
            raise ValueError(
                f"{path}: state_dict entry {key!r} claims shape {_shape(tensor.shape)} "
                f"({needed} bytes) but stores only {tensor.untyped_storage().nbytes()} bytes; refusing a crafted file"
            )


def stored_accuracy(checkpoint: Mapping[str, Any]) -> float | None:
    """The ``accuracy`` entry of a checkpoint as a Python float (tensor / numpy scalar / number), or None."""
    value = checkpoint.get("accuracy")
    if isinstance(value, Tensor) and value.numel() == 1:
        return float(value.item())
    if isinstance(value, (Real, np.generic)) and not isinstance(value, bool):
        return float(value)
    return None


# --- loading into a model ---------------------------------------------------------------------------------


def _format_keys(keys: Iterator[str] | Sequence[str], limit: int = MAX_LISTED_KEYS) -> str:
    keys = list(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f", ... (+{len(keys) - limit} more)" if len(keys) > limit else "")


@functools.cache
def _signature(arch: str) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the state_dict of ``arch`` with 100 classes (computed once per process)."""
    return _describe(arch)[0]


@functools.cache
def _describe(arch: str) -> tuple[dict[str, tuple[int, ...]], frozenset[str]]:
    """Key -> shape of ``build_model(arch)``'s state_dict (100 classes), and its floating-point keys."""
    state = build_model(arch).state_dict()
    shapes = {key: tuple(value.shape) for key, value in state.items()}
    return shapes, frozenset(key for key, value in state.items() if value.is_floating_point())


def check_weight_values(arch: str, state: Mapping[str, Tensor], *, description: str = "the state_dict") -> None:
    """Raise ``ValueError`` naming the key when a weight has the wrong kind of number for ``arch`` (integers
    where the model holds floating point) or is not finite (NaN / infinity: a diverged or damaged model)."""
    floating = _describe(arch)[1]
    for key, value in state.items():
        if key not in floating:
            continue
        if not value.is_floating_point():
            raise ValueError(f"{description}: {key!r} holds {value.dtype} values; {arch} needs floating point weights")
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"{description}: {key!r} holds NaN or infinite values (a diverged or damaged model)")


def expected_shapes(arch: str, num_classes: int = 100) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the state_dict of ``build_model(arch, num_classes)``, without keeping a model."""
    shapes = dict(_signature(arch))
    for key in _classifier_keys(shapes):
        shapes[key] = (num_classes, *shapes[key][1:])
    return shapes


def _classifier_keys(signature: Mapping[str, tuple[int, ...]]) -> tuple[str, str]:
    """The classifier's weight and bias keys: the zoo puts the classifier last in every architecture."""
    weight, bias = list(signature)[-2:]
    return weight, bias


def _matching_archs(state: Mapping[str, Tensor]) -> list[str]:
    """Architectures whose keys and shapes equal ``state``'s, ignoring the number of classes."""
    matches = []
    for arch in MODEL_NAMES:
        signature = _signature(arch)
        if signature.keys() != state.keys():
            continue
        weight, bias = _classifier_keys(signature)
        if all(
            tuple(state[key].shape)[1:] == shape[1:] if key in (weight, bias) else tuple(state[key].shape) == shape
            for key, shape in signature.items()
        ):
            matches.append(arch)
    return matches


def _shape(shape: Sequence[int]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def check_state_dict(
    expected: Mapping[str, tuple[int, ...]],
    state: Mapping[str, Tensor],
    *,
    description: str = "the state_dict",
    target: str = "the model",
) -> None:
    """Raise :class:`CheckpointMismatchError` unless ``state`` has exactly the keys and shapes ``expected``
    (key -> shape, e.g. from :func:`expected_shapes`), i.e. unless it loads with ``strict=True``.

    The message lists missing, unexpected and mis-shaped keys (the first few of each, then a count) and a
    hint: the class count to pass, or which architectures the file's keys do match.
    """
    # BatchNorm fills in num_batches_tracked for files from PyTorch < 0.4.1; let torch decide on those
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    mismatched = {
        k: (tuple(state[k].shape), shape)
        for k, shape in expected.items()
        if k in state and tuple(state[k].shape) != shape
    }
    if not (missing or unexpected or mismatched):
        return

    lines = [f"{description} does not fit {target}"]
    if missing:
        lines.append(f"  missing from the file ({len(missing)}): {_format_keys(missing)}")
    if unexpected:
        lines.append(f"  unexpected in the file ({len(unexpected)}): {_format_keys(unexpected)}")
    if mismatched:
        items = [f"{k} file {_shape(a)} vs model {_shape(b)}" for k, (a, b) in mismatched.items()]
        lines.append(f"  wrong shape ({len(mismatched)}): {_format_keys(items, limit=4)}")
    lines.append(f"  hint: {_hint(expected, state, missing, unexpected, mismatched)}")
    raise CheckpointMismatchError("\n".join(lines), missing=missing, unexpected=unexpected, mismatched=mismatched)


def _hint(
    expected: Mapping[str, tuple[int, ...]],
    state: Mapping[str, Tensor],
    missing: Sequence[str],
    unexpected: Sequence[str],
    mismatched: Mapping[str, tuple[tuple[int, ...], tuple[int, ...]]],
) -> str:
    weight, bias = _classifier_keys(expected)
    if not missing and not unexpected and set(mismatched) <= {weight, bias}:
        file_classes = tuple(state[weight].shape)[0]
        return f"the file's classifier has {file_classes} classes - pass num_classes={file_classes}"
    matches = _matching_archs(state)
    if matches:
        return "the file's keys and shapes match " + ", ".join(map(repr, matches)) + " - pass arch= accordingly"
    return "the file matches none of the zoo's architectures (is it a checkpoint of another code base?)"


def infer_arch(path: PathLike, checkpoint: Mapping[str, Any]) -> str | None:
    """The architecture named by the file's own ``arch`` entry, else by a parent folder ``<arch>_vanilla``."""
    stored = checkpoint.get("arch")
    if isinstance(stored, str) and stored in MODEL_NAMES:
        return stored
    folder = Path(path).parent.name
    if folder.endswith(VANILLA_SUFFIX) and folder[: -len(VANILLA_SUFFIX)] in MODEL_NAMES:
        return folder[: -len(VANILLA_SUFFIX)]
    return None


def load_checkpoint(
    path: PathLike, arch: str | None = None, num_classes: int | None = None, *, expected_sha256: str | None = None
) -> nn.Module:
    """Build the architecture and load the file's weights strictly; return the model in eval mode on the CPU.

    ``arch``: one of ``MODEL_NAMES``; when omitted it is taken from the file's ``arch`` entry (files written by
    :func:`save_checkpoint`) or from a parent folder named ``<arch>_vanilla`` (the published teachers).
    ``num_classes``: when omitted, the file's ``num_classes`` entry, else 100 (CIFAR-100).
    Raises :class:`CheckpointMismatchError` (a ValueError) listing missing / unexpected / mis-shaped keys when
    the weights do not fit, and the errors of :func:`read_checkpoint`.
    """
    checkpoint = read_checkpoint(path, expected_sha256=expected_sha256)
    if arch is None:
        arch = infer_arch(path, checkpoint)
        if arch is None:
            raise ValueError(
                f"arch: cannot tell the architecture of {path} (no 'arch' entry in the file and its folder is "
                f"not named '<arch>{VANILLA_SUFFIX}'); pass arch=, one of: {', '.join(MODEL_NAMES)}"
            )
    else:
        arch = check_model_name(arch, "arch")
    num_classes = _num_classes(checkpoint, num_classes)
    state = checkpoint["model"]
    description = f"checkpoint {str(path)!r}"
    stored_arch = checkpoint.get("arch")
    if isinstance(stored_arch, str) and stored_arch != arch:
        description += f" (saved as arch {stored_arch!r})"
    target = f"arch {arch!r} with num_classes={num_classes}"
    # every check runs on the file's own shapes before a model is built (no allocation for a crafted file)
    check_state_dict(expected_shapes(arch, num_classes), state, description=description, target=target)
    check_weight_values(arch, state, description=description)
    model = build_model(arch, num_classes)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # e.g. a missing num_batches_tracked that torch does not fill in
        raise CheckpointMismatchError(f"{description} does not fit arch {arch!r}: {exc}") from None
    return model.eval()


def _num_classes(checkpoint: Mapping[str, Any], num_classes: int | None) -> int:
    """``num_classes`` as given, else the file's ``num_classes`` entry (a positive int), else 100."""
    if num_classes is not None:
        return check_int("num_classes", num_classes, low=1)
    stored = checkpoint.get("num_classes")
    return 100 if stored is None else check_int("the checkpoint's 'num_classes' entry", stored, low=1)


# --- writing ----------------------------------------------------------------------------------------------


def _unwrap(model: nn.Module) -> nn.Module:
    """The module inside DataParallel / DistributedDataParallel / torch.compile wrappers."""
    while True:
        if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):
            model = model._orig_mod
        else:
            return model


_PLAIN_SCALARS = (type(None), bool, int, float, str, bytes, torch.dtype, torch.device)


def _plain(value: Any, where: str) -> Any:
    """``value`` with numpy scalars turned into Python numbers; TypeError unless it is made of tensors, plain
    scalars and lists/tuples/dicts of them - what a ``weights_only`` load reads back without an allow-list."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (Tensor, *_PLAIN_SCALARS)):
        return value
    if isinstance(value, (list, tuple)):
        items = [_plain(item, f"{where}[{index}]") for index, item in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, (str, int)):
                raise TypeError(f"{where} has a key of type {type(key).__name__}; use str or int keys")
        return {key: _plain(item, f"{where}[{key!r}]") for key, item in value.items()}
    raise TypeError(
        f"{where} is a {type(value).__name__}; checkpoints hold only tensors, numbers, strings and "
        "lists/tuples/dicts of them (so they load without unpickling arbitrary objects)"
    )


def save_checkpoint(
    path: PathLike,
    model: nn.Module,
    *,
    arch: str,
    epoch: int,
    accuracy: float,
    optimizer_state: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model`` in the standard layout, atomically, and return the path.

    The file holds ``{"model": state_dict (CPU tensors, wrapper prefixes removed), "epoch", "accuracy"
    (top-1 %, float), "optimizer" (``optimizer.state_dict()`` or None), "arch", "num_classes", **extra}`` -
    readable by :func:`load_checkpoint` without ``arch=`` and by the CRD / mdistiller code bases
    (``torch.load(path)["model"]``). The model must be the zoo architecture ``arch`` (any class count).
    """
    arch = check_model_name(arch, "arch")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_int("epoch", epoch, low=0)
    if isinstance(accuracy, Tensor) and accuracy.numel() == 1:
        accuracy = accuracy.item()
    accuracy = check_number("accuracy", accuracy)  # top-1 %
    if optimizer_state is not None:
        if not isinstance(optimizer_state, Mapping):
            kind = type(optimizer_state).__name__
            raise TypeError(f"optimizer_state must be a mapping (optimizer.state_dict()) or None, got {kind}")
        optimizer_state = _plain(dict(optimizer_state), "optimizer_state")
    if extra is not None and not isinstance(extra, Mapping):
        raise TypeError(f"extra must be a mapping or None, got {type(extra).__name__}")
    extra = _plain(dict(extra or {}), "extra")
    clash = sorted(set(extra) & set(RESERVED_KEYS))
    if clash:
        raise ValueError(f"extra must not redefine the standard keys {clash}")

    state = _strip_wrapper_prefixes(
        {key: value.detach().to("cpu") for key, value in _unwrap(model).state_dict().items()}
    )
    classifier_weight = _classifier_keys(_signature(arch))[0]
    num_classes = int(state[classifier_weight].shape[0]) if classifier_weight in state else 100
    check_state_dict(expected_shapes(arch, num_classes), state, description="model", target=f"arch {arch!r}")

    payload = {
        "model": state,
        "epoch": int(epoch),
        "accuracy": float(accuracy),
        "optimizer": optimizer_state,
        "arch": arch,
        "num_classes": num_classes,
        **extra,
    }
    path = Path(path)
    buffer = io.BytesIO()  # serialised first: a full disk then surfaces as the OS's own error, the old file stays
    torch.save(payload, buffer)
    write_bytes_atomic(path, buffer.getbuffer())
    return path
