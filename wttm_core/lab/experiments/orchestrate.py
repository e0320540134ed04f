"""Running lists of (variant x seed) training runs through the engine, with reuse of finished runs.

The notebooks and the sweep never train on their own: everything goes through
:func:`wttm_core.engine.prepare` / ``Trainer.fit`` (the same loop as the ``wttm`` command line). This module adds
what experiments need around it:

* :func:`ensure_teacher` trains a teacher once and reuses it (``build/teachers/<key>/``) across notebooks,
  sweep points and re-runs; it can keep snapshots of earlier epochs (weaker teachers for question 9);
* :func:`run_variants` trains every variant for every seed into ``<root>/<label>-s<seed>/``, records the
  per-epoch diagnostics (:mod:`~wttm_core.lab.experiments.diagnostics`), deletes the checkpoints it does not need
  and skips runs that already finished with the identical configuration;
* :func:`train_variant_runs` trains the runs of several such calls (:class:`VariantRuns`: a sweep's points, each
  in its own folder) as one cohort where they share the teacher and the data, so that each call then finds its
  runs finished;
* :func:`load_data` / :func:`teacher_logits` load a data set once and evaluate a teacher on it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from wttm_core._checks import check_int
from wttm_core.atomic import atomic_write
from wttm_core.engine import TrainConfig, config_to_dict, prepare, read_jsonl, resolve_config
from wttm_core.engine.config import identity
from wttm_core.lab.experiments.diagnostics import DiagnosticsRecorder
from wttm_core.lab.experiments.variants import Variant
from wttm_core.lab.progress import Progress
from wttm_core.runs import Run, read_run

__all__ = [
    "SNAPSHOT_ALL_UP_TO",
    "WORK_DIR_ENV",
    "RunSpec",
    "TeacherSource",
    "project_root",
    "resolve_path",
    "slug",
    "parse_teacher",
    "load_data",
    "ensure_teacher",
    "teacher_logits",
    "run_variants",
    "VariantRuns",
    "train_variant_runs",
    "with_shared_data",
]

_CHECKPOINTS = ("checkpoint.pth", "best.pth", "state.pth")
SNAPSHOT_ALL_UP_TO = 20
LOCK_DIR = "build/locks"
WORK_DIR_ENV = "WTTM_WORK_DIR"
EpochHook = Callable[["RunSpec", dict[str, Any]], None]


def project_root() -> Path:
    """The working folder: where runs, caches (``build/``) and relative data paths live - never the package.

    In order: the folder named by ``$WTTM_WORK_DIR`` (the notebook runner sets it to the folder it was started
    in, since its kernels run elsewhere); the parent of the current directory when that is the ``notebooks/``
    folder of a wttm checkout (JupyterLab's kernels run there, and a checkout keeps its ``build/`` at the top);
    else the current directory.
    """
    given = os.environ.get(WORK_DIR_ENV)
    if given:
        return Path(given).expanduser().resolve()
    cwd = Path.cwd()
    if cwd.name == "notebooks" and (cwd.parent / "wttm_core").is_dir() and (cwd.parent / "pyproject.toml").is_file():
        return cwd.parent
    return cwd


def resolve_path(path: str | Path) -> Path:
    """``path`` as given when absolute, else relative to :func:`project_root` (notebooks run in ``notebooks/``)."""
    path = Path(path)
    return path if path.is_absolute() else project_root() / path


def slug(text: str) -> str:
    """A folder-name form of a label: ``"KD + 10.8 Renyi(alpha=0.25)"`` -> ``"kd-10.8-renyi-alpha-0.25"``."""
    out = re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.")
    if not out:
        raise ValueError(f"label {text!r} has no letters or digits to name a folder after")
    return out


@dataclass(frozen=True)
class RunSpec:
    """One training run of an experiment: a variant and a seed."""

    variant: Variant
    seed: int

    @property
    def name(self) -> str:
        return f"{slug(self.variant.label)}-s{self.seed}"


@dataclass(frozen=True)
class TeacherSource:
    """Where a student's teacher comes from: ``kind`` is ``"standard"``, ``"checkpoint"`` or ``"train"``."""

    kind: str
    value: str

    def describe(self) -> str:
        return {
            "standard": "standard teacher {}",
            "checkpoint": "checkpoint {}",
            "train": "a {} teacher trained first",
        }[self.kind].format(self.value)


def parse_teacher(teacher: str) -> TeacherSource:
    """Read the notebooks' ``teacher`` parameter.

    * ``"train:<arch>"`` (e.g. ``"train:resnet20"``): train a teacher of that architecture first (cached);
    * a path ending in ``.pth`` / ``.pt``: a checkpoint in the standard layout;
    * otherwise a standard teacher name (``resnet56``, ``wrn_40_2``, ...; see :mod:`wttm_core.teachers`).
    """
    from wttm_core.models import MODEL_NAMES
    from wttm_core.teachers import STANDARD_TEACHERS

    if not isinstance(teacher, str) or not teacher.strip():
        raise ValueError(f"teacher must be a non-empty string, got {teacher!r}")
    if teacher.startswith("train:"):
        arch = teacher.split(":", 1)[1]
        if arch not in MODEL_NAMES:
            raise ValueError(f"teacher: unknown architecture {arch!r} in {teacher!r} (choose from {MODEL_NAMES})")
        return TeacherSource("train", arch)
    if teacher.endswith((".pth", ".pt")):
        return TeacherSource("checkpoint", teacher)
    if teacher in STANDARD_TEACHERS:
        return TeacherSource("standard", teacher)
    raise ValueError(
        f"teacher must be 'train:<arch>', a checkpoint path (.pth) or a standard teacher "
        f"({', '.join(STANDARD_TEACHERS)}), got {teacher!r}"
    )


def load_data(
    dataset: str,
    train_size: int | None,
    test_size: int | None,
    *,
    data_dir: str | Path = "data",
    seed: int = 0,
    download: bool = False,
) -> tuple[Any, Any]:
    """The ``(train, test)`` :class:`~wttm_core.data.ImageDataset` pair, loaded once for many runs."""
    from wttm_core.data import load_dataset

    common = {"data_dir": str(data_dir), "seed": seed, "download": download}
    return (
        load_dataset(dataset, "train", size=train_size, **common),
        load_dataset(dataset, "test", size=test_size, **common),
    )


@contextlib.contextmanager
def _exclusive(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock for ``directory`` (POSIX ``flock`` on a file in :data:`LOCK_DIR`, so that run folders
    stay clean; a no-op where ``flock`` is unavailable).

    Two processes asking for the same teacher or run (a notebook and a sweep point, two test sessions) would
    otherwise train into the same directory at once; the second one now waits and then reuses the first's result.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no cross-process lock, runs are still written atomically
        yield
        return
    locks = resolve_path(LOCK_DIR)
    locks.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:16]
    with open(locks / f"{directory.name}-{key}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_state(out: Path, config: TrainConfig) -> str | None:
    """What ``out`` holds for this (resolved) configuration: ``"finished"``, ``"resumable"`` (an interrupted run
    with its ``state.pth``) or ``None`` (nothing, or another run)."""
    config_path = out / "config.json"
    if not config_path.is_file():
        return None
    try:
        stored = json.loads(config_path.read_text())
        summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").is_file() else {}
    except json.JSONDecodeError:
        return None
    wanted = json.loads(json.dumps(config_to_dict(resolve_config(config))))
    if identity(stored) != identity(wanted):
        return None
    if summary.get("complete"):
        return "finished"
    return "resumable" if (out / "state.pth").is_file() else None


def _epochs_done(out: Path) -> list[int]:
    """The epochs an interrupted run committed (its ``metrics.jsonl``)."""
    path = out / "metrics.jsonl"
    if not path.is_file():
        return []
    return [row["epoch"] for row in read_jsonl(path)]  # the one JSON-lines reader (wttm_core.rundir)


def _with_data(config: TrainConfig, data: tuple[Any, Any] | None) -> TrainConfig:
    """``config`` as it is recorded: an absolute ``data_dir`` (notebooks run in ``notebooks/``, the command line
    at the root: the same run must look the same) and, for in-memory data, its sizes."""
    config = dataclasses.replace(config, data_dir=str(resolve_path(config.data_dir)))
    if data is None:
        return config
    extra = dict(config.extra, in_memory_data=True)
    return dataclasses.replace(config, train_size=len(data[0]), test_size=len(data[1]), extra=extra)


def ensure_teacher(
    arch: str,
    *,
    dataset: str,
    epochs: int,
    data: tuple[Any, Any] | None = None,
    data_dir: str = "data",
    train_size: int | None = None,
    test_size: int | None = None,
    seed: int = 0,
    device: str = "auto",
    root: str | Path = "build/teachers",
    snapshot_epochs: Iterable[int] | None = None,
    quiet: bool = False,
    log: Callable[[str], None] = print,
    use_shipped: bool = True,
) -> Path:
    """Train a ``ce`` teacher of ``arch`` unless an identical finished one exists; return its run directory.

    The run directory ``<root>/<dataset>-<arch>-n<train>-e<epochs>-s<seed>`` holds ``checkpoint.pth`` (the
    teacher after ``epochs``) and, for every ``e`` in ``snapshot_epochs``, ``checkpoint_epoch<e>.pth`` (the same
    teacher after ``e`` epochs: weaker teachers from one training run). ``None`` asks for no particular snapshot
    and, when a teacher is trained here, keeps one of every epoch for short runs (at most
    :data:`SNAPSHOT_ALL_UP_TO` epochs) and none for longer ones. With ``use_shipped``, a teacher shipped in
    ``data/teachers/`` that fits (:mod:`wttm_core.lab.shipped_teacher`) is installed instead of training one.
    """
    needed = None if snapshot_epochs is None else sorted({int(e) for e in snapshot_epochs})
    every = list(range(1, epochs + 1)) if epochs <= SNAPSHOT_ALL_UP_TO else []
    if any(e < 1 or e > epochs for e in needed or []):
        raise ValueError(f"snapshot_epochs must lie in 1..{epochs}, got {needed}")
    size = len(data[0]) if data is not None else train_size
    out = resolve_path(root) / f"{dataset}-{arch}-n{size or 'all'}-e{epochs}-s{seed}"
    config = _with_data(
        TrainConfig(
            arch=arch,
            method="ce",
            dataset=dataset,
            data_dir=data_dir,
            train_size=train_size,
            test_size=test_size,
            epochs=epochs,
            seed=seed,
            device=device,
            out=str(out),
            quiet=quiet,
        ),
        data,
    )
    with _exclusive(out):
        if use_shipped and _run_state(out, config) != "finished":
            from wttm_core.lab.shipped_teacher import find_shipped_teacher, install_shipped_teacher

            found = find_shipped_teacher(config, data, needed)
            if found is not None:
                install_shipped_teacher(*found, out, config, log)
        _train_teacher(out, config, needed or [], sorted(set(needed or []) | set(every)), data, log)
    return out


def _train_teacher(
    out: Path,
    config: TrainConfig,
    needed: list[int],
    snapshots: list[int],
    data: tuple[Any, Any] | None,
    log: Callable[[str], None],
) -> None:
    """Reuse the finished teacher in ``out`` when it has the ``needed`` snapshots, else train it (resuming when
    possible), keeping the ``snapshots``."""
    state = _run_state(out, config)
    if state == "finished" and all((out / f"checkpoint_epoch{e}.pth").is_file() for e in needed):
        log(f"teacher: reusing {out}")
        return
    done = len(_epochs_done(out)) if state == "resumable" else 0
    resume = state == "resumable" and all((out / f"checkpoint_epoch{e}.pth").is_file() for e in snapshots if e <= done)

    progress = Progress("teacher", config.epochs - done if resume else config.epochs)

    def snapshot(record: dict[str, Any]) -> None:
        progress.advance(f"teacher {config.arch} epoch {record['epoch']}/{config.epochs}")
        if record["epoch"] in snapshots:
            with atomic_write(out / f"checkpoint_epoch{record['epoch']}.pth", "wb") as handle:
                handle.write((out / "checkpoint.pth").read_bytes())

    what = f"resuming after epoch {done}" if resume else "training"
    log(f"teacher: {what} {config.arch} for {config.epochs} epoch(s) into {out}")
    start = time.perf_counter()
    trainer = prepare(config, data=data)
    summary = trainer.fit(callbacks=[snapshot], resume=resume, force=not resume)
    (out / "state.pth").unlink(missing_ok=True)
    log(f"teacher: test accuracy {summary['last_test_acc']:.2f}% after {time.perf_counter() - start:.0f} s")


@torch.inference_mode()
def teacher_logits(checkpoint: str | Path, dataset: Any, *, device: str = "auto", batch_size: int = 500) -> Tensor:
    """Float32 logits ``[N, K]`` of a checkpointed model on every image of ``dataset`` (no augmentation)."""
    from wttm_core.data import DeviceLoader
    from wttm_core.engine.metrics import predict_logits
    from wttm_core.engine.runtime import default_amp, default_channels_last, resolve_device
    from wttm_core.models import load_checkpoint

    device = resolve_device(device)
    amp = default_amp(device)
    channels_last = default_channels_last(device, amp)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = load_checkpoint(checkpoint, num_classes=dataset.num_classes).to(device, memory_format=fmt).eval()
    loader = DeviceLoader(dataset, batch_size, train=False, device=device, memory_format=fmt)
    logits, _ = predict_logits(model, loader, device=device, amp=amp, channels_last=channels_last)
    return logits.float().cpu()


def _run_config(base: TrainConfig, spec: RunSpec, out: Path, data: tuple[Any, Any] | None) -> TrainConfig:
    """The configuration of one run of :func:`run_variants`: ``base`` with the variant, the seed and ``out``."""
    fields = spec.variant.config_fields()
    extra = {**base.extra, "label": spec.variant.label}
    return _with_data(dataclasses.replace(base, **fields, seed=spec.seed, out=str(out), extra=extra), data)


def _epochs_left(out: Path, config: TrainConfig, reuse: bool) -> int:
    """Epochs still to train for ``config`` in ``out`` (none for a finished run, fewer for a resumable one)."""
    state = _run_state(out, config) if reuse else None
    if state == "finished":
        return 0
    return config.epochs - (len(_epochs_done(out)) if state == "resumable" else 0)


def _progress_callback(progress: Progress, name: str, epochs: int) -> Callable[[dict[str, Any]], None]:
    """An epoch callback that reports each finished epoch of run ``name`` to ``progress``."""
    return lambda record: progress.advance(f"{name} epoch {record['epoch']}/{epochs}")


def run_variants(
    variants: Sequence[Variant],
    seeds: Sequence[int],
    *,
    base: TrainConfig,
    root: str | Path,
    data: tuple[Any, Any] | None = None,
    diagnostics: bool = True,
    keep_checkpoints: bool = False,
    reuse: bool = True,
    on_epoch: EpochHook | None = None,
    log: Callable[[str], None] = print,
) -> list[Run]:
    """Train every variant with every seed (variant-major order) and return the runs read back from disk.

    Each run is ``base`` with the variant's fields, the seed, ``out = <root>/<label>-s<seed>`` and
    ``extra["label"]`` set. With ``reuse`` a finished run of the identical configuration is read, not retrained;
    the runs still to train share the teacher and train as one cohort (one teacher pass per batch for all).
    ``on_epoch(spec, record)`` is called after every epoch (live plots), and for a reused or resumed run first
    with each epoch it finished before. Checkpoints are deleted after each run
    unless ``keep_checkpoints``; ``diagnostics`` adds ``diagnostics.jsonl`` (entropy histograms, superclasses).
    """
    batch = VariantRuns(variants, seeds, base, root, data, diagnostics, keep_checkpoints)
    specs, outs, configs = batch.expand()
    left = [_epochs_left(out, config, reuse) for out, config in zip(outs, configs, strict=True)]
    progress = Progress("training", sum(left))
    with _all_locked(outs):
        pending = _runs_to_train(specs, outs, configs, reuse, on_epoch, progress, log)
        if pending:  # the runs still to train share the teacher: one cohort (halved while it does not fit)
            _train_cohort(pending, data, diagnostics, keep_checkpoints, log)
        return [read_run(out) for out in outs]


@dataclass(frozen=True)
class VariantRuns:
    """The arguments of one :func:`run_variants` call, to train the runs of several calls together
    (:func:`train_variant_runs`: a sweep's points that share a teacher)."""

    variants: Sequence[Variant]
    seeds: Sequence[int]
    base: TrainConfig
    root: str | Path
    data: tuple[Any, Any] | None = None
    diagnostics: bool = True
    keep_checkpoints: bool = False

    def expand(self) -> tuple[list[RunSpec], list[Path], list[TrainConfig]]:
        """Check the arguments; every run's spec, output folder and configuration, as :func:`run_variants` has
        them."""
        if not self.variants:
            raise ValueError("variants must not be empty")
        if not self.seeds:
            raise ValueError(f"seeds must be a non-empty list of non-negative integers, got {self.seeds!r}")
        for seed in self.seeds:
            check_int("seeds", seed, low=0)
        labels = [v.label for v in self.variants]
        if len({slug(label) for label in labels}) != len(labels):
            raise ValueError(f"variants need distinct labels (as folder names), got {labels}")
        root = resolve_path(self.root)
        specs = [RunSpec(variant, seed) for variant in self.variants for seed in self.seeds]
        outs = [root / spec.name for spec in specs]
        configs = [_run_config(self.base, spec, out, self.data) for spec, out in zip(specs, outs, strict=True)]
        return specs, outs, configs

    def run(self, **options: Any) -> list[Run]:
        """:func:`run_variants` with these arguments (``options``: ``reuse``, ``on_epoch``, ``log``)."""
        fields = {"diagnostics": self.diagnostics, "keep_checkpoints": self.keep_checkpoints}
        return run_variants(
            self.variants, self.seeds, base=self.base, root=self.root, data=self.data, **fields, **options
        )


@contextlib.contextmanager
def _all_locked(outs: Sequence[Path]) -> Iterator[None]:
    """Hold the lock of every folder in ``outs`` (taken in sorted order, so two processes never deadlock)."""
    with contextlib.ExitStack() as locks:
        for out in sorted(set(outs)):
            locks.enter_context(_exclusive(out))
        yield


def train_variant_runs(batches: Sequence[VariantRuns], *, log: Callable[[str], None] = print) -> int:
    """Train the unfinished runs of several :func:`run_variants` calls, as few cohorts as possible; return how
    many runs were trained.

    Runs whose resolved configurations agree on everything a cohort shares
    (:data:`~wttm_core.engine.cohort.SHARED_FIELDS`: the teacher, the data, the batch size, ...) and whose
    in-memory data sets are equal train as one cohort; each run is written where its own :func:`run_variants`
    call reads it, which then finds it finished and trains nothing. Finished runs are skipped, interrupted ones
    resumed, exactly as :func:`run_variants` does.
    """
    groups: dict[tuple[Any, ...], list[tuple[RunSpec, Path, TrainConfig]]] = {}
    datasets: list[tuple[Any, Any] | None] = []
    for batch in batches:
        specs, outs, configs = batch.expand()
        data = with_shared_data(batch, datasets).data  # first: it may add the batch's data to the list
        index = next(i for i, known in enumerate(datasets) if known is data)
        for spec, out, config in zip(specs, outs, configs, strict=True):
            key = (index, batch.diagnostics, batch.keep_checkpoints, _shared_key(config))
            groups.setdefault(key, []).append((spec, out, config))
    trained = 0
    for (index, diagnostics, keep_checkpoints, _), members in groups.items():
        specs, outs, configs = (list(column) for column in zip(*members, strict=True))
        left = [_epochs_left(out, config, True) for out, config in zip(outs, configs, strict=True)]
        with _all_locked(outs):
            pending = _runs_to_train(specs, outs, configs, True, None, Progress("training", sum(left)), log)
            if pending:
                _train_cohort(pending, datasets[index], diagnostics, keep_checkpoints, log)
        trained += len(pending)
    return trained


def with_shared_data(batch: VariantRuns, known: list[tuple[Any, Any] | None]) -> VariantRuns:
    """``batch`` on the data set of ``known`` that equals its own (the same images and labels), or on its own,
    which is then added to ``known``: the points of a sweep load equal data sets, and one copy is enough."""
    for data in known:
        if _same_data(data, batch.data):
            return batch if data is batch.data else dataclasses.replace(batch, data=data)
    known.append(batch.data)
    return batch


def _shared_key(config: TrainConfig) -> tuple[str, ...]:
    """What students of one cohort must share (:data:`~wttm_core.engine.cohort.SHARED_FIELDS`), resolved."""
    from wttm_core.engine.cohort import SHARED_FIELDS

    resolved = resolve_config(config)
    return tuple(repr(getattr(resolved, name)) for name in SHARED_FIELDS)


def _same_data(a: tuple[Any, Any] | None, b: tuple[Any, Any] | None) -> bool:
    """Whether two in-memory ``(train, test)`` data sets hold the same images and labels (``None``: none given)."""
    if a is None or b is None or a is b:
        return a is b
    for first, second in zip(a, b, strict=True):
        if first.num_classes != second.num_classes or first.images.shape != second.images.shape:
            return False
        if not (torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)):
            return False
    return True


Pending = tuple[Path, TrainConfig, bool, list[Callable[[dict[str, Any]], None]]]  # out, config, resume, callbacks


def _runs_to_train(
    specs: list[RunSpec],
    outs: list[Path],
    configs: list[TrainConfig],
    reuse: bool,
    on_epoch: EpochHook | None,
    progress: Progress,
    log: Callable[[str], None],
) -> list[Pending]:
    """The runs still to train with their epoch callbacks; finished ones are reused (their epochs replayed into
    ``on_epoch``)."""
    pending: list[Pending] = []
    for index, (spec, out, config) in enumerate(zip(specs, outs, configs, strict=True), start=1):
        state = _run_state(out, config) if reuse else None
        hook = (lambda record, spec=spec: on_epoch(spec, record)) if on_epoch is not None else None
        if hook is not None and state in ("finished", "resumable"):
            for record in read_jsonl(out / "metrics.jsonl"):  # live plots show the epochs done before
                hook(record)
        if state == "finished":
            log(f"[{index}/{len(specs)}] {spec.name}: finished before, reusing {out}")
            continue
        log(f"[{index}/{len(specs)}] {spec.name}: " + ("resuming" if state == "resumable" else "training"))
        tick = _progress_callback(progress, f"[{index}/{len(specs)}] {spec.name}", config.epochs)
        pending.append((out, config, state == "resumable", [c for c in (hook, tick) if c is not None]))
    return pending


def _train_cohort(
    pending: list[Pending],
    data: tuple[Any, Any] | None,
    diagnostics: bool,
    keep_checkpoints: bool,
    log: Callable[[str], None],
) -> None:
    """Train the pending runs as one cohort (one teacher pass per batch for all of them); a cohort too large for
    the machine's memory is split in halves."""
    from wttm_core.engine import CohortTooLarge, prepare_cohort

    try:
        cohort = prepare_cohort([config for _, config, _, _ in pending], data=data)
    except CohortTooLarge:
        if len(pending) == 1:
            raise
        half = len(pending) // 2
        log(f"    {len(pending)} runs do not fit in memory at once: training them in two cohorts")
        for part in (pending[:half], pending[half:]):
            _train_cohort(part, data, diagnostics, keep_checkpoints, log)
        return
    listeners: list[list[Callable[[dict[str, Any]], None]]] = []
    for member, (out, _, resume, callbacks) in zip(cohort.members, pending, strict=True):
        out.mkdir(parents=True, exist_ok=True)
        if not resume:
            (out / "diagnostics.jsonl").unlink(missing_ok=True)
        listeners.append(([DiagnosticsRecorder(member)] if diagnostics else []) + callbacks)
    resumes = [resume for _, _, resume, _ in pending]
    summaries = cohort.fit(
        callbacks=[lambda index, record: [listener(record) for listener in listeners[index]]],
        resume=resumes,
        force=[not resume for resume in resumes],
    )
    for (out, _, _, _), summary in zip(pending, summaries, strict=True):
        if not keep_checkpoints:
            for name in _CHECKPOINTS:
                (out / name).unlink(missing_ok=True)
        if summary.get("diverged"):
            log(f"    {out.name}: stopped, {summary['diverged']}")
            continue
        log(
            f"    {out.name}: best {summary['best_test_acc']:.2f}%, last {summary['last_test_acc']:.2f}% "
            f"in {summary['seconds']:.0f} s"
        )
