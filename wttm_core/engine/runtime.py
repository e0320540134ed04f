"""Device, precision and determinism settings of a training run.

Per-device defaults (``"auto"``) follow measurements on the project's machines (``benchmarks/RESULTS.md``):
bfloat16 autocast plus channels_last memory format on CUDA and on CPUs with native bf16 matrix instructions
(AVX512-BF16 / AMX), float32 elsewhere. Autocast changes numerics slightly; the losses themselves are always
computed in float32 (the functional core upcasts).
"""

from __future__ import annotations

import contextlib
import os
import platform
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "AMP_MODES",
    "resolve_device",
    "cpu_has_fast_bf16",
    "cpu_description",
    "default_amp",
    "default_channels_last",
    "amp_dtype",
    "autocast",
    "seed_everything",
    "set_deterministic",
]

AMP_MODES = ("off", "bf16", "fp16")


def resolve_device(device: str, local_rank: int | None = None) -> str:
    """Turn ``"auto"`` / ``"cuda"`` / ``"cpu"`` / ``"cuda:N"`` into a concrete device string.

    Under ``torchrun`` (``local_rank`` given) a CUDA device is the process's own ``cuda:<local_rank>``.
    """
    if not isinstance(device, str):
        raise TypeError(f"device must be a string, got {type(device).__name__}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from None
    if parsed.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} was asked for but CUDA is not available on this machine")
        index = parsed.index if parsed.index is not None else (local_rank or 0)
        if index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s) visible")
        return f"cuda:{index}"
    return "cpu"


# torch.cpu's probes for native bf16 matrix instructions, with the names the hardware documentation uses
_BF16_UNITS = (("_is_amx_tile_supported", "AMX"), ("_is_avx512_bf16_supported", "AVX512-BF16"))


def _bf16_units() -> list[str]:
    return [label for probe, label in _BF16_UNITS if _probe(probe)]


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU has native bf16 matrix instructions (AVX512-BF16 or AMX), where bf16 autocast pays."""
    return bool(_bf16_units())


def cpu_description() -> str:
    """The CPU's model name (from ``/proc/cpuinfo`` where there is one) and its bf16 matrix instructions.

    Speed numbers depend on these: bf16 autocast uses AVX512-BF16 or AMX tiles where the CPU has them (the whole
    fast path measured 2.24x the reference on AVX512-BF16, ``benchmarks/RESULTS.md``).
    """
    name = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    units = _bf16_units()
    return f"{name} ({', '.join(units) if units else 'no bf16 matrix instructions'})"


def _probe(name: str) -> bool:
    check = getattr(torch.cpu, name, None)
    if check is None:
        return False
    with contextlib.suppress(Exception):
        return bool(check())
    return False


def default_amp(device: str) -> str:
    """The measured-best autocast mode for ``device``: bf16 on CUDA (fp16 on pre-Ampere) and fast-bf16 CPUs."""
    if device.startswith("cuda"):
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_fast_bf16() else "off"


def default_channels_last(device: str, amp: str) -> bool:
    """channels_last pays with reduced-precision convolutions (oneDNN on CPU, tensor cores on CUDA)."""
    return device.startswith("cuda") or amp != "off"


def amp_dtype(amp: str) -> torch.dtype | None:
    """The autocast dtype of an ``--amp`` mode (``None`` for ``"off"``)."""
    if amp not in AMP_MODES:
        raise ValueError(f"amp must be one of {AMP_MODES}, got {amp!r}")
    return {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]


@contextlib.contextmanager
def autocast(device: str, amp: str, *, cache: bool = True) -> Iterator[None]:
    """``torch.autocast`` for ``device`` in the mode ``amp``; a no-op when ``amp == "off"``.

    ``cache=False`` turns off autocast's cache of cast weights, which a CUDA graph capture requires.
    """
    dtype = amp_dtype(amp)
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=torch.device(device).type, dtype=dtype, cache_enabled=cache):
        yield


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and all CUDA devices) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_deterministic(enabled: bool) -> None:
    """Ask torch for deterministic kernels (and no cuDNN autotuning) when ``enabled``; autotune otherwise.

    On CUDA, deterministic cuBLAS needs ``CUBLAS_WORKSPACE_CONFIG``; it is set here when not already set, which
    is effective only before the first cuBLAS call of the process.
    """
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled
