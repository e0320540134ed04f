"""The training loop: one student, or a cohort of students distilled from one frozen teacher.

``train(config)`` resolves the configuration and builds everything (data, teacher, student, optimizer, loaders)
*before* it writes a single file, so bad input leaves nothing on disk; then it trains epoch by epoch following
the recipe (SGD with momentum, step decay at the scaled milestones). ``train_cohort(configs)`` does the same for
several students at once: students with the same seed see the same batches in the same order, the teacher runs
once per batch for all of them, and each student keeps its own model, optimizer, schedule and run directory.

Per step: the frozen teacher's logits under ``torch.inference_mode()`` in the students' autocast, then each
student's step (forward, the method's loss parts computed in float32 by the kernels, backward, update;
:mod:`wttm_core.engine.step`). Nothing is read back to the host during an epoch; on one CUDA device the step is
replayed as one CUDA graph (:mod:`wttm_core.engine.speed`). Per epoch: the test-set metrics in float32 (by
default), one line in ``metrics.jsonl``, the checkpoints and the resumable state
(:mod:`wttm_core.engine.persistence`).

Interruption: Ctrl-C (SIGINT) finishes the current step, saves the exact mid-epoch state and raises
:class:`TrainingInterrupted`; ``resume=True`` continues from there (or from the last epoch end after a hard
kill) and, with ``deterministic=True`` on the same machine, ends with the same numbers as an uninterrupted run.
A student whose training loss stops being finite stops alone (its reason in ``summary.json``); a student trained
alone raises :class:`TrainingDiverged`.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from wttm_core.engine import distributed as D
from wttm_core.engine import persistence, speed
from wttm_core.engine.cohort import check_cohort, check_memory, write_manifest
from wttm_core.engine.config import TrainConfig, resolve_config
from wttm_core.engine.metrics import TrainMeter
from wttm_core.engine.runtime import set_deterministic
from wttm_core.engine.shared import Shared
from wttm_core.engine.state import restore_rng
from wttm_core.engine.student import Student

__all__ = [
    "train",
    "prepare",
    "train_cohort",
    "prepare_cohort",
    "Trainer",
    "Cohort",
    "TrainingInterrupted",
    "TrainingDiverged",
    "EpochCallback",
    "CohortCallback",
]

EpochCallback = Callable[[dict[str, Any]], None]
CohortCallback = Callable[[int, dict[str, Any]], None]  # (student index, epoch record)
_DDP_STOP_CHECK_EVERY = 50  # steps between agreeing on a Ctrl-C across ranks


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped training after a step; the state to resume from was saved (when the run has an ``out``)."""


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


# ------------------------------------------------------------------------------------------------ entry points
def train(
    config: TrainConfig,
    *,
    callbacks: Iterable[EpochCallback] = (),
    resume: bool | str = False,
    force: bool = False,
    data: tuple[Any, Any] | None = None,
    handle_sigint: bool = True,
) -> dict[str, Any]:
    """Train (or distil) as ``config`` says and return the run's summary (plus its ``history``).

    Args:
        config: the run; ``None`` / ``"auto"`` fields are resolved (see :func:`resolve_config`).
        callbacks: called on rank 0 after every epoch with that epoch's metrics record (live plots).
        resume: continue the run in ``config.out`` (same configuration) from its saved state (``True``) or, when
            that is lost, from its last ``checkpoint.pth`` (``"checkpoint"``); never starts from scratch.
        force: replace whatever run ``config.out`` holds.
        data: optional ``(train, test)`` :class:`~wttm_core.data.ImageDataset` pair to use instead of loading
            ``config.dataset`` (notebooks that already hold the data).
        handle_sigint: turn Ctrl-C into "save the state, then raise :class:`TrainingInterrupted`".

    Under ``torchrun`` the same call trains data-parallel (see :mod:`wttm_core.engine.distributed`).
    """
    ctx = D.context_from_environment()
    cfg = resolve_config(config, world_size=ctx.world_size, local_rank=ctx.local_rank)
    set_deterministic(cfg.deterministic)
    with D.process_group(ctx, cfg.device):
        trainer = Trainer(cfg, ctx, data=data, requested=config)
        return trainer.fit(callbacks=callbacks, resume=resume, force=force, handle_sigint=handle_sigint)


def prepare(config: TrainConfig, *, data: tuple[Any, Any] | None = None) -> Trainer:
    """Resolve ``config`` and build a one-process :class:`Trainer` without writing anything (validation)."""
    cfg = resolve_config(config)
    set_deterministic(cfg.deterministic)
    return Trainer(cfg, D.DistContext(), data=data, requested=config)


def train_cohort(
    configs: Sequence[TrainConfig],
    *,
    callbacks: Iterable[CohortCallback] = (),
    resume: bool | str = False,
    force: bool = False,
    data: tuple[Any, Any] | None = None,
    handle_sigint: bool = True,
    manifest: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Train several students of one teacher together (see the module docstring); one summary per config.

    ``callbacks`` are called as ``callback(index, record)`` after each student's epoch; ``manifest`` is a path
    for ``cohort.json`` (the list of the students' run directories). A cohort that would not fit the machine's
    memory is refused before anything starts (:class:`~wttm_core.engine.cohort.CohortTooLarge`).
    """
    if D.context_from_environment().enabled:
        raise ValueError("configs: a cohort trains in one process (under torchrun, train one student with train())")
    cohort = prepare_cohort(configs, data=data)
    return cohort.fit(callbacks=callbacks, resume=resume, force=force, handle_sigint=handle_sigint, manifest=manifest)


def prepare_cohort(configs: Sequence[TrainConfig], *, data: tuple[Any, Any] | None = None) -> Cohort:
    """Resolve and check ``configs`` and build a one-process :class:`Cohort` without writing anything."""
    if not configs:
        raise ValueError("configs: a cohort needs at least one student")
    resolved = [resolve_config(config) for config in configs]
    check_cohort(resolved)
    set_deterministic(resolved[0].deterministic)
    ctx = D.DistContext()
    shared = Shared(resolved[0], ctx, data)
    check_memory(resolved, shared)
    members = [Student(cfg, ctx, shared, requested) for cfg, requested in zip(resolved, configs, strict=True)]
    return Cohort(members)


# ------------------------------------------------------------------------------------------------ one student
class Trainer(Student):
    """One student with its own data and teacher: :meth:`fit` trains it and writes its run files."""

    def __init__(
        self,
        cfg: TrainConfig,
        ctx: D.DistContext,
        *,
        data: tuple[Any, Any] | None = None,
        requested: TrainConfig | None = None,
    ) -> None:
        super().__init__(cfg, ctx, Shared(cfg, ctx, data), requested)

    def fit(
        self,
        *,
        callbacks: Iterable[EpochCallback] = (),
        resume: bool | str = False,
        force: bool = False,
        handle_sigint: bool = True,
    ) -> dict[str, Any]:
        """Train to ``cfg.epochs`` (continuing a saved state when resuming) and return the summary."""
        listeners = [lambda index, record, callback=callback: callback(record) for callback in callbacks]
        [result] = Cohort([self]).fit(callbacks=listeners, resume=resume, force=force, handle_sigint=handle_sigint)
        if self.stopped is not None:
            raise TrainingDiverged(self.stopped)
        return result


# ------------------------------------------------------------------------------------------------ the loop
@dataclass
class _Stream:
    """Students sharing one sequence of batches this epoch (same seed, same position) and their meters."""

    members: list[Student]
    meters: list[TrainMeter]
    batches: Iterator[tuple[Tensor, Tensor]]
    generators: dict[str, torch.Generator]
    epoch_start: dict[str, Tensor]
    lrs: list[float]
    index: int = 0
    seconds_before: float = 0.0
    done: bool = field(default=False)


class Cohort:
    """Students on one :class:`~wttm_core.engine.shared.Shared` (data, teacher) trained in lockstep."""

    def __init__(self, members: Sequence[Student]) -> None:
        self.members = list(members)
        self.shared = self.members[0].shared
        self.ctx = self.members[0].ctx
        self.device = self.shared.device
        self._graph = None
        if len(self.members) > 1 and self.shared.cfg.cuda_graphs:  # one shared stream: the whole step as a graph
            optimizers = speed.Optimizers(m.optimizer for m in self.members)
            self._graph = speed.graphed(self._shared_step, optimizers, self.shared.cfg)

    def fit(
        self,
        *,
        callbacks: Iterable[CohortCallback] = (),
        resume: bool | str | Sequence[bool | str] = False,
        force: bool | Sequence[bool] = False,
        handle_sigint: bool = True,
        manifest: str | Path | None = None,
    ) -> list[dict[str, Any]]:
        """Train every student to its ``epochs`` and return their summaries (each with its ``history``).

        ``resume=True`` continues from ``state.pth``, ``resume="checkpoint"`` from ``checkpoint.pth``; neither ever
        starts from scratch. The process owns each run directory (its lock) from before the check to the end.
        """
        count = len(self.members)
        resumes = [resume] * count if isinstance(resume, bool | str) else list(resume)
        forces = [force] * count if isinstance(force, bool) else list(force)
        with persistence.owned_run_directories(self.members):  # one owner per run directory (issue 13)
            return self._fit(list(callbacks), resumes, forces, handle_sigint, manifest)

    def _fit(
        self,
        callbacks: list[CohortCallback],
        resumes: list[bool | str],
        forces: list[bool],
        handle_sigint: bool,
        manifest: str | Path | None,
    ) -> list[dict[str, Any]]:
        states = persistence.open_run_directories(self.members, resumes, forces)  # open the run directories
        for member, state in zip(self.members, states, strict=True):
            if state is not None:  # resume state
                persistence.restore(member, state, speed.loader_generators(member.train_loader))
        if manifest is not None and self.ctx.is_main:
            write_manifest(manifest, self.members)
        self.shared.teacher_test_logits()
        start = min(len(m.history) for m in self.members)
        end = max(m.cfg.epochs for m in self.members)
        with _sigint_flag(handle_sigint) as stop, self._epoch_bar(start, end) as bar:
            for epoch in range(start, end):
                self._run_epoch(epoch, stop, callbacks)
                bar.update(1)
                self._show(bar)
        return [dict(m.summary(), history=list(m.history)) for m in self.members]

    def _run_epoch(self, epoch: int, stop: dict[str, bool], callbacks: list[CohortCallback]) -> None:
        """Train the students due for ``epoch`` through its batches, then end the epoch for each of them."""
        due = [m for m in self.members if m.stopped is None and len(m.history) == epoch and epoch < m.cfg.epochs]
        if not due:
            return
        streams = [self._start_stream(epoch, members) for members in _streams_of(epoch, due)]
        seconds = self._train_steps(epoch, streams, stop)
        for stream in streams:
            for member, meter, lr in zip(stream.members, stream.meters, stream.lrs, strict=True):
                record = member.end_epoch(epoch, meter, lr, stream.seconds_before + seconds)
                if record is None:
                    persistence.save_summary(member)  # the reason it stopped
                    if self._graph is not None:
                        self._graph.reset()
                    continue
                record["cohort_students"] = len(due)  # who shared the epoch's wall time (its train_seconds)
                improved = member.best["epoch"] == epoch + 1
                persistence.save_epoch(member, epoch, record, improved, stream.generators)
                for callback in callbacks if self.ctx.is_main else ():
                    callback(self.members.index(member), record)
        D.barrier(self.ctx)

    def _start_stream(self, epoch: int, members: list[Student]) -> _Stream:
        """The epoch's batches for ``members`` (rewound to a saved mid-epoch position when resuming)."""
        partial = members[0].partial  # the students of a stream stopped at the same batch (see _streams_of)
        loader = members[0].train_loader
        generators = speed.loader_generators(loader)
        if partial is not None:  # rewind the loader to the start of the interrupted epoch
            for name, generator in generators.items():
                generator.set_state(partial["epoch_start_generators"][name])
        epoch_start = {name: generator.get_state() for name, generator in generators.items()}
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)
        meters = [TrainMeter(m.method.terms, self.device) for m in members]
        for member, meter in zip(members, meters, strict=True):
            member.method.set_epoch(epoch)  # terms with a schedule (a warm-up) follow the epoch
            if member.partial is not None:
                meter.load_state_dict(member.partial["meter"])
            member.student.train()
        lrs = [m.optimizer.param_groups[0]["lr"] for m in members]
        stream = _Stream(members, meters, iter(loader), generators, epoch_start, lrs)
        if partial is not None:
            for _ in range(int(partial["batch"])):
                next(stream.batches)
            stream.index, stream.seconds_before = int(partial["batch"]), float(partial["train_seconds"])
            restore_rng(partial["rng"])  # the global generators as they were at the interruption
        for member in members:
            member.partial = None
        return stream

    def _train_steps(self, epoch: int, streams: list[_Stream], stop: dict[str, bool]) -> float:
        """Every step of the epoch (the streams in lockstep); returns the training seconds."""
        total = max(len(s.members[0].train_loader) for s in streams)
        first = min(s.index for s in streams)
        with self._batch_bar(epoch, total, first) as bar:
            speed.sync(self.device)
            start = time.perf_counter()
            for step_index in range(first + 1, total + 1):
                batches = [(s, next(s.batches, None)) for s in streams if not s.done]
                live = [(s, b) for s, b in batches if b is not None]
                for s, b in batches:
                    s.done = b is None
                if not live:
                    break
                self._step(live)
                bar.update(1)
                if self._should_stop(stop, step_index, total):
                    speed.sync(self.device)
                    self._interrupt(epoch, streams, time.perf_counter() - start)
            speed.sync(self.device)
            return time.perf_counter() - start

    def _step(self, live: list[tuple[_Stream, tuple[Tensor, Tensor]]]) -> None:
        """One step of every student: the teacher once over all the streams' batches, then each student's."""
        for stream, _ in live:
            stream.index += 1
        if len(live) == 1 and len(live[0][0].members) == 1:  # one student: its own (graphed) step
            stream, (images, labels) = live[0]
            images, labels = speed.to_device(images, labels, stream.members[0].cfg)
            stream.members[0]._step(*D.shard(images, labels, self.ctx), labels.shape[0], stream.meters[0])
            return
        if len(live) == 1 and len(live[0][0].members) == len(self.members):  # every student on one batch
            stream, (images, labels) = live[0]
            for meter, output in zip(stream.meters, self.train_step(images, labels), strict=True):
                meter.update(*_with_labels(output, labels))
            return
        moved = [speed.to_device(images, labels, self.shared.cfg) for _, (images, labels) in live]
        teacher_logits = self.shared.teacher_logits_of([images for images, _ in moved])
        for (stream, _), (images, labels), teacher in zip(live, moved, teacher_logits, strict=True):
            for member, meter in zip(stream.members, stream.meters, strict=True):
                meter.update(*_with_labels(member.student_step(images, labels, teacher), labels))

    def train_step(self, images: Tensor, labels: Tensor) -> list[Any]:
        """One step of every student on one batch: the teacher once, then each student's step (replayed as one
        CUDA graph where graphs are on); returns each student's (loss parts, logits, weight ``U``)."""
        images, labels = speed.to_device(images, labels, self.shared.cfg)
        return self._graph(images, labels) if self._graph is not None else self._shared_step(images, labels)

    def _shared_step(self, images: Tensor, labels: Tensor) -> list[Any]:
        """The step of every student on one shared batch (what the cohort's CUDA graph captures)."""
        teacher = self.shared.teacher_logits(images)
        return [m.student_step(images, labels, teacher) for m in self.members]

    def _should_stop(self, stop: dict[str, bool], step_index: int, total: int) -> bool:
        if not self.ctx.enabled:
            return stop["stop"]
        if step_index % _DDP_STOP_CHECK_EVERY and step_index != total:
            return False
        flag = torch.tensor([1.0 if stop["stop"] else 0.0], device=self.device)
        return bool(D.all_reduce_sum(flag, self.ctx).item() > 0)

    def _interrupt(self, epoch: int, streams: list[_Stream], seconds: float) -> None:
        saved = False
        for stream in streams:
            for member, meter in zip(stream.members, stream.meters, strict=True):
                args = (epoch, stream.index, meter, stream.epoch_start, stream.seconds_before + seconds)
                saved = persistence.save_interruption(member, *args, stream.generators) or saved
        D.barrier(self.ctx)
        where = f"epoch {epoch + 1}, batch {max(s.index for s in streams)}"
        if not saved:
            raise TrainingInterrupted(f"interrupted at {where}")
        outs = sorted({str(Path(m.cfg.out).parent if len(self.members) > 1 else m.cfg.out) for m in self.members})
        raise TrainingInterrupted(
            f"interrupted at {where}; the state is saved in {', '.join(outs)}: continue with resume (--resume)"
        )

    # -------------------------------------------------------------------------------------------- progress
    def _shows(self) -> bool:
        return not self.shared.cfg.quiet and self.ctx.is_main

    def _epoch_bar(self, start: int, end: int) -> tqdm:
        one = self.members[0].cfg
        desc = f"{one.method} {one.arch}" if len(self.members) == 1 else f"cohort of {len(self.members)}"
        return tqdm(total=end, initial=start, desc=desc, unit="epoch", disable=not self._shows(), dynamic_ncols=True)

    def _batch_bar(self, epoch: int, total: int, first: int) -> tqdm:
        end = max(m.cfg.epochs for m in self.members)
        return tqdm(
            total=total,
            initial=first,
            desc=f"epoch {epoch + 1}/{end}",
            unit="batch",
            leave=False,
            disable=not self._shows(),
            dynamic_ncols=True,
        )

    def _show(self, bar: tqdm) -> None:
        records = [m.history[-1] for m in self.members if m.history]
        if len(self.members) == 1 and records:
            bar.set_postfix(loss=f"{records[0]['train_loss']:.3f}", test_acc=f"{records[0]['test_acc']:.2f}")
        elif records:
            bar.set_postfix(best_test_acc=f"{max(r['test_acc'] for r in records):.2f}")


def _with_labels(output: tuple[Any, Tensor, Tensor | None], labels: Tensor) -> tuple[Any, Tensor, Tensor, Any]:
    parts, logits, weights = output
    return parts, logits, labels, weights


def _streams_of(epoch: int, members: list[Student]) -> list[list[Student]]:
    """Students grouped by the batches they see: the same seed and the same position in the epoch."""
    groups: dict[tuple[int, int], list[Student]] = {}
    for member in members:
        partial = member.partial if member.partial is not None and member.partial["epoch"] == epoch else None
        position = int(partial["batch"]) if partial is not None else 0
        groups.setdefault((member.cfg.seed, position), []).append(member)
    return list(groups.values())


@contextlib.contextmanager
def _sigint_flag(enabled: bool) -> Iterator[dict[str, bool]]:
    """While active, the first Ctrl-C only sets ``flag["stop"]`` (the loop saves and stops); a second one aborts."""
    flag = {"stop": False}
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: object) -> None:
        if flag["stop"]:
            raise KeyboardInterrupt
        flag["stop"] = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
