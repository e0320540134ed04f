"""The typed configuration of one training run, its resolution and its ``config.json`` form.

The command line and the notebooks build the same :class:`TrainConfig`. Fields left at ``None`` / ``"auto"``
are filled by :func:`resolve_config` from the recipe (:mod:`wttm_core.presets`), the Table 8/9 presets and
the machine, so that ``config.json`` records every value the run actually used. Validation happens here,
where values enter: a bad value raises ``ValueError`` naming the field.
"""

from __future__ import annotations

import dataclasses
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wttm_core._checks import check_int, check_number
from wttm_core.data.synthetic import DEFAULT_SIMILARITY
from wttm_core.engine.methods import WEIGHTINGS, Method, MethodSpec, build_method, parse_method
from wttm_core.engine.runtime import (
    AMP_MODES,
    cpu_description,
    cpu_has_fast_bf16,
    default_amp,
    default_channels_last,
    resolve_device,
)
from wttm_core.loss_terms import BASE_METHODS, TERMS
from wttm_core.paper import RECIPE, learning_rate, method_hyperparameters, scaled_milestones

__all__ = [
    "TrainConfig",
    "DATASETS",
    "LOADERS",
    "resolve_config",
    "config_to_dict",
    "identity",
    "environment_info",
    "git_commit",
    "EVAL_PRECISIONS",
    "LEGACY_VALUES",
]

DATASETS = ("synthetic", "cifar100")
LOADERS = ("device", "reference")
EVAL_PRECISIONS = ("fp32", "amp")
# Fields added after runs were first written: the value a run directory without the field was made with, so that
# such a run resumes as it started (unless the caller sets the field).
# (synthetic_similarity: the synthetic set had no shared superclass components before the field existed)
LEGACY_VALUES: dict[str, Any] = {"eval_precision": "amp", "synthetic_similarity": 0.0}
# The configuration fields that set loss-term hyper-parameters (the table's ``field`` names).
METHOD_FIELDS = tuple(dict.fromkeys(p.field for term in TERMS.values() for p in term.params if p.field is not None))
# Fields that do not change what is computed: two configs differing only here describe the same run.
_NOT_IDENTITY = frozenset({"out", "quiet", "num_workers", "cuda_graphs", "preset_source"})  # preset_source: provenance


# How a field appears on the command line (``wttm train-teacher`` / ``wttm distill``, built from these fields):
# ``metadata["cli"]`` holds its help text, its argument group, the command-line default (``None`` = resolve from
# the recipe / the presets, :data:`KEEP` = the field's own default), a named type parser and the choices.
KEEP: Any = object()
CLI_GROUPS = ("distill", "data", "recipe", "execution", "output")


def _flag(
    default: Any,
    help: str,
    group: str,
    *,
    cli: Any = None,
    parse: str | None = None,
    choices: tuple[str, ...] | None = None,
    required: bool = False,
) -> Any:
    """A dataclass field with its command-line description (see :data:`CLI_GROUPS`)."""
    option = {"help": help, "group": group, "default": default if cli is KEEP else cli, "parse": parse}
    option.update(choices=choices, required=required)
    return field(default=default, metadata={"cli": option})


_METHODS_HELP = f"{', '.join(BASE_METHODS)} or a sum like wttm+0.8*kd; a comma-separated list trains a cohort"
_WEIGHTING_HELP = (
    "WTTM sample weight: power-sum (Eq. 22, default), power-sum-normalised, teacher-entropy, one-minus-max, none"
)


@dataclass
class TrainConfig:
    """Everything that defines a training run (teacher training is method ``ce`` without a teacher).

    Defaults are the paper's CIFAR-100 recipe (``wttm_core.presets.RECIPE``); ``None`` / ``"auto"`` means
    "resolve from the recipe, the Table 8/9 presets or the machine".
    """

    # what is trained, and how
    arch: str = "resnet8"
    method: str = _flag("ce", _METHODS_HELP, "distill", cli="wttm")
    teacher: str | None = _flag(None, "teacher architecture or standard teacher name", "distill")
    teacher_checkpoint: str | None = _flag(None, "teacher weights (default: the standard file)", "distill")
    teacher_dir: str = _flag("data", "where standard teachers are looked up (data)", "distill", cli=KEEP)
    teacher_arch: str | None = None
    gamma: float | None = _flag(None, "power / 1/T of TTM and WTTM (Table 8/9 preset)", "distill")
    beta: float | None = _flag(None, "weight of the TTM / WTTM term (Table 8/9 preset)", "distill")
    temperature: float = _flag(RECIPE.kd_temperature, "KD temperature (4)", "distill")
    ce_weight: float | None = _flag(None, "cross-entropy weight (kd: 0.1, else 1)", "distill")
    kd_weight: float = _flag(RECIPE.kd_weight, "KD term weight lambda (0.9)", "distill")
    label_smoothing: float = _flag(0.0, "label smoothing of the CE term (0)", "recipe")
    weighting: str = _flag("power-sum", _WEIGHTING_HELP, "distill")
    renyi_order: float | None = _flag(None, "order of an added renyi term (1/T)", "distill")
    metric_temperature: float | None = None
    preset_source: str | None = None
    # data
    dataset: str = _flag("synthetic", "synthetic (offline, default) or cifar100", "data", cli=KEEP)
    data_dir: str = _flag("data", "folder holding cifar-100-python (default: data)", "data")
    train_size: int | None = _flag(None, "training images (default: all)", "data")
    test_size: int | None = _flag(None, "test images (default: all)", "data")
    data_seed: int = _flag(0, "synthetic-set seed / CIFAR subsample seed", "data", cli=KEEP, parse="seed")
    synthetic_similarity: float = _flag(
        DEFAULT_SIMILARITY,
        f"synthetic set: how alike superclasses of one family look, in [0, 1) ({DEFAULT_SIMILARITY})",
        "data",
        cli=KEEP,
    )
    download: bool = _flag(False, "download CIFAR-100 when it is missing", "data")
    loader: str = _flag("device", "device (GPU-resident, default) or reference (DataLoader)", "execution", cli=KEEP)
    num_workers: int = _flag(0, "DataLoader workers of --loader reference (0)", "execution", cli=KEEP)
    # recipe
    epochs: int = _flag(RECIPE.epochs, "epochs (240); lr milestones scale with it", "recipe")
    batch_size: int = _flag(RECIPE.batch_size, "global batch size (64)", "recipe")
    test_batch_size: int | None = _flag(None, "evaluation batch size (256)", "recipe")
    lr: float | None = _flag(
        None,
        "initial lr (0.05; 0.01 for MobileNetV2/ShuffleV1/V2); a comma-separated list trains a cohort",
        "recipe",
        parse="float_list",
    )
    momentum: float = _flag(RECIPE.momentum, "SGD momentum (0.9)", "recipe")
    weight_decay: float = _flag(RECIPE.weight_decay, "weight decay (5e-4)", "recipe")
    milestones: tuple[int, ...] | None = _flag(None, "lr x0.1 epochs (150 180 210 scaled)", "recipe")
    lr_decay: float = RECIPE.lr_decay
    # execution
    seed: int = _flag(
        0,
        "seed of the model init and the data order (0); a comma-separated list trains a cohort",
        "execution",
        cli=[0],
        parse="seed_list",
    )
    deterministic: bool = _flag(False, "deterministic kernels (exact resume)", "execution")
    device: str = _flag("auto", "auto, cpu, cuda or cuda:N (auto)", "execution", cli=KEEP)
    amp: str = _flag(
        "auto",
        "autocast precision (auto: bf16 on CUDA and on CPUs with bf16 instructions)",
        "execution",
        cli=KEEP,
        choices=("auto", *AMP_MODES),
    )
    channels_last: bool | None = _flag(None, "channels_last memory format (auto: on with bf16/CUDA)", "execution")
    compile: bool = _flag(False, "torch.compile the models (slow first epoch)", "execution")
    cuda_graphs: bool | None = _flag(
        None,
        "replay each training step as one CUDA graph (auto: on for one CUDA process without fp16/compile)",
        "execution",
    )
    eval_precision: str | None = _flag(
        None,
        "test-set evaluation in float32 (fp32, default) or under the training autocast (amp)",
        "execution",
        choices=EVAL_PRECISIONS,
    )
    sync_bn: bool = _flag(True, "under torchrun: BatchNorm statistics over the global batch (default on)", "execution")
    world_size: int = 1
    out: str | None = _flag(
        None, "run directory (config.json, metrics.jsonl, checkpoints)", "output", parse="path", required=True
    )
    quiet: bool = _flag(False, "no progress bars", "output")
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def distills(self) -> bool:
        """Whether a teacher takes part (as a loss term or only for the metrics)."""
        return self.teacher is not None or self.teacher_checkpoint is not None


# The numeric fields' ranges (check_number's bounds); a field whose default is None may also be None.
_COUNT, _INDEX = {"low": 1, "integer": True}, {"low": 0, "integer": True}
_POSITIVE, _NON_NEGATIVE, _FRACTION = {"low": 0, "low_open": True}, {"low": 0}, {"low": 0, "high": 1, "high_open": True}
_NUMBER_FIELDS: dict[str, dict[str, Any]] = {
    **dict.fromkeys(("epochs", "batch_size", "train_size", "test_size", "test_batch_size", "world_size"), _COUNT),
    **dict.fromkeys(("seed", "data_seed", "num_workers"), _INDEX),
    **dict.fromkeys(("gamma", "beta", "lr", "renyi_order", "metric_temperature", "temperature", "lr_decay"), _POSITIVE),
    **dict.fromkeys(("momentum", "weight_decay", "kd_weight", "ce_weight"), _NON_NEGATIVE),
    **dict.fromkeys(("label_smoothing", "synthetic_similarity"), _FRACTION),
}
_MAY_BE_NONE = frozenset(f.name for f in dataclasses.fields(TrainConfig) if f.default is None)


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def _validate(cfg: TrainConfig, model_names: tuple[str, ...]) -> None:
    if cfg.arch not in model_names:
        raise ValueError(f"arch: unknown architecture {cfg.arch!r} (choose from {', '.join(model_names)})")
    parse_method(cfg.method)
    _check_choice("dataset", cfg.dataset, DATASETS)
    _check_choice("loader", cfg.loader, LOADERS)
    _check_choice("amp", cfg.amp, ("auto", *AMP_MODES))
    _check_choice("weighting", cfg.weighting, WEIGHTINGS)
    if cfg.eval_precision is not None:
        _check_choice("eval_precision", cfg.eval_precision, EVAL_PRECISIONS)
    for name, bounds in _NUMBER_FIELDS.items():
        value = getattr(cfg, name)
        if value is not None or name not in _MAY_BE_NONE:
            check_number(name, value, **bounds)
    if cfg.milestones is not None:
        ms = tuple(cfg.milestones)
        for m in ms:
            check_int("milestones", m, low=0)
        if list(ms) != sorted(ms):
            raise ValueError(f"milestones must be non-decreasing non-negative integers, got {cfg.milestones!r}")
    if cfg.batch_size % cfg.world_size:
        raise ValueError(
            f"batch_size {cfg.batch_size} (the global batch) must be divisible by the {cfg.world_size} processes"
        )
    if not isinstance(cfg.extra, dict):
        raise TypeError(f"extra must be a dict, got {type(cfg.extra).__name__}")


def resolve_config(config: TrainConfig, *, world_size: int = 1, local_rank: int | None = None) -> TrainConfig:
    """Validate ``config`` and return a copy with every ``None`` / ``"auto"`` replaced by the value used.

    Does not touch the disk except to locate a standard teacher's checkpoint under ``teacher_dir``.
    """
    from wttm_core.models import MODEL_NAMES

    model_names = tuple(MODEL_NAMES)
    cfg = dataclasses.replace(config, world_size=world_size, extra=dict(config.extra))
    if cfg.milestones is not None:
        cfg.milestones = tuple(cfg.milestones)
    _validate(cfg, model_names)
    spec = parse_method(cfg.method)

    if cfg.distills:  # which architecture, which file: one resolve_teacher
        from wttm_core.teachers import resolve_teacher

        choice = resolve_teacher(
            cfg.teacher if cfg.teacher is not None else cfg.teacher_arch,
            cfg.teacher_checkpoint,
            teacher_dir=cfg.teacher_dir,
        )
        if cfg.teacher_arch is not None and cfg.teacher_arch != choice.arch:
            raise ValueError(f"teacher_arch {cfg.teacher_arch!r} contradicts teacher {cfg.teacher!r}")
        cfg.teacher_arch, cfg.teacher_checkpoint = choice.arch, str(choice.path)
    if any(TERMS[name].needs_teacher for name in spec.names) and not cfg.distills:
        raise ValueError(f"method {cfg.method!r} needs a teacher: give teacher and/or teacher_checkpoint")

    _resolve_method(cfg, spec)

    if cfg.lr is None:
        cfg.lr = learning_rate(cfg.arch)
    if cfg.milestones is None:
        cfg.milestones = scaled_milestones(cfg.epochs)
    if cfg.test_batch_size is None:
        cfg.test_batch_size = 256  # evaluation in eval mode: the result does not depend on it

    cfg.device = resolve_device(cfg.device, local_rank if world_size > 1 else None)
    if cfg.amp == "auto":
        cfg.amp = default_amp(cfg.device)
    if cfg.amp == "fp16" and cfg.device == "cpu":
        raise ValueError("amp: fp16 autocast is for CUDA; use bf16 (or off) on the CPU")
    if cfg.channels_last is None:
        cfg.channels_last = default_channels_last(cfg.device, cfg.amp)
    cfg.cuda_graphs = _resolve_cuda_graphs(cfg)
    cfg.eval_precision = cfg.eval_precision or "fp32"  # published accuracies are float32 evaluations
    return cfg


def _resolve_method(cfg: TrainConfig, spec: MethodSpec) -> None:
    """Fill gamma / beta from Tables 8-9 where the method's terms take presets and they were not given, record
    where they came from, validate every term hyper-parameter by building the method once, and pick the metrics'
    temperature (the method's 1/gamma, else KD's T)."""
    tuned = [name for name in spec.names if TERMS[name].presets]
    if tuned and (cfg.gamma is None or cfg.beta is None):
        preset = method_hyperparameters(tuned[0], cfg.teacher_arch, cfg.arch)
        if cfg.gamma is None:
            cfg.gamma = preset["gamma"]  # type: ignore[assignment]
        if cfg.beta is None:
            cfg.beta = preset["beta"]  # type: ignore[assignment]
        cfg.preset_source = str(preset["source"])
        if cfg.gamma is None or cfg.beta is None:
            missing = " and ".join(n for n in ("gamma", "beta") if getattr(cfg, n) is None)
            raise ValueError(
                f"{missing}: no Table 8/9 preset for {cfg.teacher_arch} -> {cfg.arch} with method "
                f"{tuned[0]!r}; give {missing} explicitly"
            )
    elif tuned:
        cfg.preset_source = "given"
    method_for(cfg, spec)
    if cfg.metric_temperature is None:
        cfg.metric_temperature = 1.0 / cfg.gamma if tuned else cfg.temperature  # type: ignore[operator]


def _resolve_cuda_graphs(cfg: TrainConfig) -> bool:
    """CUDA graphs are on by default where they apply: a CUDA device, one process, amp off or bf16, no compile."""
    obstacles = [
        reason
        for reason, present in (
            (f"device {cfg.device}", not cfg.device.startswith("cuda")),
            (f"{cfg.world_size} processes", cfg.world_size > 1),
            ("amp fp16 (its loss scaler reads values back)", cfg.amp == "fp16"),
            ("compile", cfg.compile),
        )
        if present
    ]
    if cfg.cuda_graphs and obstacles:
        raise ValueError(
            "cuda_graphs: needs a CUDA device, one process, amp off or bf16 and no compile; here: "
            + ", ".join(obstacles)
        )
    return not obstacles if cfg.cuda_graphs is None else bool(cfg.cuda_graphs)


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """A JSON-ready dict of the configuration (tuples become lists)."""
    out = dataclasses.asdict(cfg)
    if out["milestones"] is not None:
        out["milestones"] = list(out["milestones"])
    return out


def identity(data: dict[str, Any]) -> dict[str, Any]:
    """The part of a config dict that decides what is computed (used to recognise the same run on disk); a field
    added since the dict was written counts with the value it was made with (:data:`LEGACY_VALUES`)."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    found = {**LEGACY_VALUES, **{k: v for k, v in data.items() if k in names and k not in _NOT_IDENTITY}}
    if found.get("dataset") != "synthetic":  # only the synthetic set has it: CIFAR-100 runs match either way
        found.pop("synthetic_similarity", None)
    return found


def git_commit(folder: str | Path | None = None) -> str | None:
    """The commit checked out where this package lives (``None`` outside a git checkout, or unreadable).

    Reads ``.git`` directly (a worktree's ``gitdir:`` file, loose and packed refs): no ``git`` program needed.
    """
    start = Path(folder) if folder is not None else Path(__file__).resolve().parents[2]
    try:
        dot_git = start / ".git"
        if dot_git.is_file():  # a worktree or submodule: "gitdir: <path>"
            dot_git = (start / dot_git.read_text().split(":", 1)[1].strip()).resolve()
        head = (dot_git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head or None
        ref = head.split(":", 1)[1].strip()
        common = dot_git / "commondir"
        roots = [dot_git] + ([(dot_git / common.read_text().strip()).resolve()] if common.is_file() else [])
        for root in roots:
            if (root / ref).is_file():
                return (root / ref).read_text().strip()
            packed = root / "packed-refs"
            if packed.is_file():
                for line in packed.read_text().splitlines():
                    if line.endswith(" " + ref):
                        return line.split()[0]
    except (OSError, IndexError, UnicodeDecodeError):
        return None
    return None


def environment_info(device: str, eval_precision: str | None = None) -> dict[str, Any]:
    """Provenance recorded in ``config.json`` next to the configuration: the package version and git commit,
    versions, hardware, thread count, device and evaluation precision."""
    import torchvision

    import wttm_core

    info: dict[str, Any] = {
        "wttm": getattr(wttm_core, "__version__", "unknown"),
        "git_commit": git_commit(),
        "device": device,
        "eval_precision": eval_precision,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "processor": cpu_description(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_fast_bf16": cpu_has_fast_bf16(),
    }
    if device.startswith("cuda"):
        info["cuda"] = torch.version.cuda
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def method_for(cfg: TrainConfig, spec: str | MethodSpec | None = None) -> Method:
    """The loss :class:`Method` a configuration describes (``spec`` defaults to ``cfg.method``)."""
    return build_method(cfg.method if spec is None else spec, **{name: getattr(cfg, name) for name in METHOD_FIELDS})
