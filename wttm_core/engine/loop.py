"""The training loop: one loop for teachers (cross-entropy) and for KD / TTM / WTTM students.

``train(config)`` resolves the configuration, loads the data and the teacher and builds everything *before* it
writes a single file (so bad input leaves nothing on disk), then trains epoch by epoch following the recipe
(SGD with momentum, step decay at the scaled milestones). Per step: the frozen teacher's logits under
``torch.inference_mode()`` in the same autocast as the student, the student's logits, the method's loss parts
computed in float32 by the functional core, backward, update. Nothing is read back to the host during an
epoch, and on one CUDA device the whole step is replayed as one CUDA graph (:mod:`wttm_core.engine.graphs`).
Per epoch: the test-set metrics of :mod:`wttm_core.engine.metrics`, one line in ``metrics.jsonl``, the
checkpoints and the resumable state (:mod:`wttm_core.engine.state`).

Interruption: Ctrl-C (SIGINT) finishes the current step, saves the exact mid-epoch state and raises
:class:`TrainingInterrupted`; ``resume=True`` continues from there (or from the last epoch end after a hard
kill) and, with ``deterministic=True`` on the same machine, ends with the same numbers as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from wttm_core.engine import distributed as D
from wttm_core.engine.config import TrainConfig, config_to_dict, environment_info, method_for, resolve_config
from wttm_core.engine.graphs import GraphedStep
from wttm_core.engine.methods import LossParts, Method, sample_weights
from wttm_core.engine.metrics import TrainMeter, evaluation_sums, finish_evaluation, predict_logits
from wttm_core.engine.runtime import autocast, seed_everything, set_deterministic
from wttm_core.engine.state import (
    RUN_FILES,
    RunDirectoryError,
    capture_rng,
    check_run_directory,
    load_state,
    read_jsonl,
    restore_rng,
    save_state,
    state_from_checkpoint,
    write_json,
    write_jsonl,
)
from wttm_core.rundir import owned_run_directory

__all__ = ["train", "prepare", "load_run", "Trainer", "TrainingInterrupted", "TrainingDiverged", "EpochCallback"]

EpochCallback = Callable[[dict[str, Any]], None]
_DDP_STOP_CHECK_EVERY = 50  # steps between agreeing on a Ctrl-C across ranks


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped training after a step; the state to resume from was saved (when the run has an ``out``)."""


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


def train(
    config: TrainConfig,
    *,
    callbacks: Iterable[EpochCallback] = (),
    resume: bool = False,
    force: bool = False,
    data: tuple[Any, Any] | None = None,
    handle_sigint: bool = True,
) -> dict[str, Any]:
    """Train (or distil) as ``config`` says and return the run's summary (plus its ``history``).

    Args:
        config: the run; ``None`` / ``"auto"`` fields are resolved (see :func:`resolve_config`).
        callbacks: called on rank 0 after every epoch with that epoch's metrics record (live plots).
        resume: continue the run in ``config.out`` (same configuration) from its saved state.
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
        trainer = Trainer(cfg, ctx, data=data)
        return trainer.fit(callbacks=callbacks, resume=resume, force=force, handle_sigint=handle_sigint)


def prepare(config: TrainConfig, *, data: tuple[Any, Any] | None = None) -> Trainer:
    """Resolve ``config`` and build a one-process :class:`Trainer` without writing anything (validation)."""
    cfg = resolve_config(config)
    set_deterministic(cfg.deterministic)
    return Trainer(cfg, D.DistContext(), data=data)


def _load_data(cfg: TrainConfig, data: tuple[Any, Any] | None) -> tuple[Any, Any]:
    from wttm_core.data import load_dataset

    if data is not None:
        return data
    if cfg.dataset == "cifar100" and not cfg.download and not Path(cfg.data_dir).is_dir():
        raise ValueError(f"data_dir: {cfg.data_dir} does not exist (CIFAR-100 is read from there)")
    common = {"data_dir": cfg.data_dir, "seed": cfg.data_seed, "download": cfg.download}
    train_set = load_dataset(cfg.dataset, "train", size=cfg.train_size, **common)
    test_set = load_dataset(cfg.dataset, "test", size=cfg.test_size, **common)
    return train_set, test_set


def _load_teacher(cfg: TrainConfig, num_classes: int) -> nn.Module:
    """The frozen teacher: a standard teacher's file (however it was reached) is checked against its digest."""
    from wttm_core.teachers import load_resolved_teacher, resolve_teacher  # safety (issue 12): one resolve_teacher

    choice = resolve_teacher(cfg.teacher_arch, cfg.teacher_checkpoint, teacher_dir=cfg.teacher_dir)
    return load_resolved_teacher(choice, num_classes=num_classes)


def _memory_format(cfg: TrainConfig) -> torch.memory_format:
    return torch.channels_last if cfg.channels_last else torch.contiguous_format


class Trainer:
    """A fully built run (data, models, optimizer, loaders); :meth:`fit` trains it and writes the run files."""

    def __init__(self, cfg: TrainConfig, ctx: D.DistContext, *, data: tuple[Any, Any] | None = None) -> None:
        from wttm_core.models import build_model

        self.cfg, self.ctx = cfg, ctx
        self.device = torch.device(cfg.device)
        self.train_set, self.test_set = _load_data(cfg, data)
        self.data_given = data is not None
        num_classes = self.train_set.num_classes
        self.method: Method = method_for(cfg)
        fmt = _memory_format(cfg)
        self.teacher: nn.Module | None = None
        if cfg.teacher_checkpoint is not None:
            teacher = _load_teacher(cfg, num_classes)
            self.teacher = teacher.to(self.device, memory_format=fmt).eval().requires_grad_(False)

        seed_everything(cfg.seed)
        student = build_model(cfg.arch, num_classes=num_classes)
        if ctx.enabled and cfg.sync_bn:
            student = D.convert_sync_batchnorm(student, cfg.device)
        self.student = student.to(self.device, memory_format=fmt)
        self.optimizer = torch.optim.SGD(
            self.student.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, milestones=list(cfg.milestones or ()), gamma=cfg.lr_decay
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.amp == "fp16")
        trained: nn.Module = self.student
        if ctx.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            trained = DistributedDataParallel(self.student, device_ids=ids)
        self.student_forward: Callable[[Tensor], Tensor] = torch.compile(trained) if cfg.compile else trained
        self.teacher_forward = torch.compile(self.teacher) if cfg.compile and self.teacher is not None else self.teacher
        self.graphed_step: GraphedStep[tuple[LossParts, Tensor, Tensor | None]] | None = (
            GraphedStep(self._train_step, self.optimizer, batch_size=cfg.batch_size) if cfg.cuda_graphs else None
        )
        self.train_loader, self.test_loader = self._loaders()
        self.metric_gamma = 1.0 / float(cfg.metric_temperature)  # type: ignore[arg-type]
        self.history: list[dict[str, Any]] = []
        self.best = {"test_acc": None, "epoch": None}
        self.teacher_test_acc: float | None = None
        self._teacher_test_logits: list[Tensor] | None = None
        self._last_test_logits: tuple[Tensor, Tensor] | None = None

    # -------------------------------------------------------------------------------------------- data
    def _loaders(self) -> tuple[Any, Any]:
        from wttm_core.data import DeviceLoader, reference_loader

        cfg = self.cfg
        if cfg.loader == "reference":
            return (
                reference_loader(
                    self.train_set, cfg.batch_size, train=True, num_workers=cfg.num_workers, seed=cfg.seed
                ),
                reference_loader(self.test_set, cfg.test_batch_size, train=False),  # type: ignore[arg-type]
            )
        fmt = _memory_format(cfg)
        return (
            DeviceLoader(
                self.train_set, cfg.batch_size, train=True, device=self.device, seed=cfg.seed, memory_format=fmt
            ),
            DeviceLoader(
                self.test_set,
                cfg.test_batch_size,
                train=False,
                device=self.device,  # type: ignore
                memory_format=fmt,
            ),
        )

    def _loader_generators(self) -> dict[str, torch.Generator]:
        """Stateful generators of the training loader (the device loader draws per epoch from its seed)."""
        loader = self.train_loader
        found = {}
        if isinstance(getattr(loader, "generator", None), torch.Generator):
            found["loader"] = loader.generator
        dataset_generator = getattr(getattr(loader, "dataset", None), "generator", None)
        if isinstance(dataset_generator, torch.Generator):
            found["dataset"] = dataset_generator
        return found

    def _to_device(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        images = images.to(self.device, non_blocking=True).contiguous(memory_format=_memory_format(self.cfg))
        return images, labels.to(self.device, non_blocking=True)

    def _shards(self, loader: Iterable[tuple[Tensor, Tensor]]) -> Iterator[tuple[Tensor, Tensor]]:
        for images, labels in loader:
            yield D.shard(*self._to_device(images, labels), self.ctx)

    # -------------------------------------------------------------------------------------------- steps
    def _step(self, images: Tensor, labels: Tensor, global_size: int, meter: TrainMeter) -> None:
        if self.graphed_step is not None:  # single process: the global batch is the local one
            parts, student_logits, weights = self.graphed_step(images, labels)
        else:
            parts, student_logits, weights = self._train_step(images, labels, global_size)
        meter.update(parts, student_logits, labels, weights)

    def _train_step(
        self, images: Tensor, labels: Tensor, global_size: int | None = None
    ) -> tuple[LossParts, Tensor, Tensor | None]:
        """One optimisation step; returns the (detached) loss parts, the student's logits and WTTM's weight ``U``
        (a metric).

        Reads nothing back to the host (the epoch's loss is checked for divergence at the epoch end instead of
        each loss checking its own value), so the host can queue the next step while a GPU runs this one.
        """
        cfg = self.cfg
        teacher_logits = None
        with autocast(cfg.device, cfg.amp, cache=self.graphed_step is None):
            if self.teacher_forward is not None:
                with torch.inference_mode():
                    teacher_logits = self.teacher_forward(images)
            student_logits = self.student_forward(images)
        parts = self.method(student_logits, teacher_logits, labels)  # float32, unchecked kernels: no read-back
        loss = parts.total * D.loss_scale(labels.shape[0], global_size or labels.shape[0], self.ctx)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        weights = sample_weights(teacher_logits, self.metric_gamma, "power-sum") if teacher_logits is not None else None
        # detached, so that no output keeps this step's autograd graph (and its AccumulateGrad nodes) alive
        detached = LossParts(parts.total.detach(), {name: v.detach() for name, v in parts.parts.items()})
        return detached, student_logits.detach(), weights

    def _evaluate(self) -> dict[str, float]:
        cfg = self.cfg
        student_logits, labels = predict_logits(
            self.student,
            self._shards(self.test_loader),
            device=cfg.device,
            amp=cfg.amp,
            channels_last=bool(cfg.channels_last),
        )
        self._last_test_logits = (student_logits, labels)
        teacher_logits = self._teacher_test_logits[0] if self._teacher_test_logits else None
        sums = evaluation_sums(student_logits, labels, teacher_logits, float(cfg.metric_temperature))
        return finish_evaluation(sums, self.ctx)

    def last_test_logits(self) -> tuple[Tensor, Tensor] | None:
        """The student's logits and the labels of the last evaluation (this process's shard under DDP), for
        epoch callbacks that want more than the logged means without a second pass over the test set."""
        return self._last_test_logits

    def teacher_test_logits(self) -> Tensor | None:
        """The teacher's logits on the test set (this process's shard), computed once per run."""
        self._evaluate_teacher()
        return self._teacher_test_logits[0] if self._teacher_test_logits else None

    def _evaluate_teacher(self) -> None:
        if self.teacher is None or self._teacher_test_logits is not None:
            return
        cfg = self.cfg
        logits, labels = predict_logits(
            self.teacher,
            self._shards(self.test_loader),
            device=cfg.device,
            amp=cfg.amp,
            channels_last=bool(cfg.channels_last),
        )
        self._teacher_test_logits = [logits]
        sums = {
            "count": torch.tensor(float(labels.numel()), dtype=torch.float64, device=logits.device),
            "acc": (logits.argmax(-1) == labels).sum().double(),
        }
        self.teacher_test_acc = finish_evaluation(sums, self.ctx)["acc"] * 100.0

    # -------------------------------------------------------------------------------------------- files
    @property
    def out(self) -> Path | None:
        return Path(self.cfg.out) if self.cfg.out is not None else None

    def _writes(self) -> bool:
        return self.out is not None and self.ctx.is_main

    def _config_record(self) -> dict[str, Any]:
        record = config_to_dict(self.cfg)
        record["environment"] = environment_info(self.cfg.device)
        record["environment"]["world_size"] = self.ctx.world_size
        record["data"] = {
            "dataset": self.cfg.dataset,
            "train_images": len(self.train_set),
            "test_images": len(self.test_set),
            "num_classes": self.train_set.num_classes,
            "in_memory": self.data_given,
        }
        record["method_objective"] = self.method.describe()
        record["term_hyperparameters"] = self.method.hyperparameters()  # every term's values, defaults included
        return record

    def _open_directory(self, resume: bool, force: bool) -> dict[str, Any] | None:
        """Check ``out`` (rank 0 decides, every rank agrees), prepare it, and return a state to resume from."""
        if self.out is None:
            if resume:
                raise ValueError("resume needs an output directory (out)")
            return None
        record = self._config_record()
        decision: object
        if self.ctx.is_main:
            try:
                decision = check_run_directory(self.out, record, resume=resume, force=force)
            except RunDirectoryError as error:
                decision = error
        else:
            decision = None
        decision = D.broadcast_object(decision, self.ctx)
        if isinstance(decision, Exception):
            raise decision
        # --- safety (issue 13): a corrupt or foreign state.pth is one line with the way out; "checkpoint"
        # continues from checkpoint.pth (--resume-from-checkpoint)
        if decision == "resume":
            return load_state(self.out / "state.pth", record)
        if decision == "checkpoint":
            rng = capture_rng(self._loader_generators())
            return state_from_checkpoint(
                self.out, record, scheduler=self.scheduler, scaler_state=self.scaler.state_dict(), rng=rng
            )
        # --- end safety
        if self.ctx.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            if decision == "overwrite":
                for name in RUN_FILES:
                    (self.out / name).unlink(missing_ok=True)
            write_json(self.out / "config.json", record)
        D.barrier(self.ctx)
        return None

    def _state(
        self, epochs_done: int, batch: int, meter: TrainMeter | None, epoch_start: dict | None, train_seconds: float
    ) -> dict[str, Any]:
        return {
            "epoch": epochs_done,
            "batch": batch,
            "model": self.student.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": capture_rng(self._loader_generators()),
            "epoch_start_generators": epoch_start,
            "meter": meter.state_dict() if meter is not None else None,
            "train_seconds": train_seconds,
            "history": self.history,
            "best": self.best,
            "config": config_to_dict(self.cfg),
        }

    def _save_epoch(self, epoch: int, record: dict[str, Any], improved: bool) -> None:
        from wttm_core.models import save_checkpoint

        assert self.out is not None
        common = {"arch": self.cfg.arch, "epoch": epoch + 1, "accuracy": record["test_acc"]}
        extra = {"method": self.cfg.method, "test_acc": record["test_acc"], "seed": self.cfg.seed}
        if improved:
            save_checkpoint(self.out / "best.pth", self.student, **common, extra=extra)
        save_checkpoint(
            self.out / "checkpoint.pth",
            self.student,
            **common,
            optimizer_state=self.optimizer.state_dict(),
            extra=extra,
        )
        write_jsonl(self.out / "metrics.jsonl", self.history)
        write_json(self.out / "summary.json", self.summary())
        save_state(self.out / "state.pth", self._state(epoch + 1, 0, None, None, 0.0))  # the commit point

    def summary(self) -> dict[str, Any]:
        """Best and last test accuracy (published tables mix both protocols) and what produced them."""
        last = self.history[-1] if self.history else {}
        return {
            "arch": self.cfg.arch,
            "teacher": self.cfg.teacher_arch,
            "method": self.cfg.method,
            "objective": self.method.describe(),
            "gamma": self.cfg.gamma,
            "beta": self.cfg.beta,
            "seed": self.cfg.seed,
            "dataset": self.cfg.dataset,
            "epochs": self.cfg.epochs,
            "epochs_completed": len(self.history),
            "complete": len(self.history) == self.cfg.epochs,
            "best_test_acc": self.best["test_acc"],
            "best_epoch": self.best["epoch"],
            "last_test_acc": last.get("test_acc"),
            "last_test_top5": last.get("test_top5"),
            "last_epoch": last.get("epoch"),
            "teacher_test_acc": self.teacher_test_acc,
            "train_seconds": sum(r["train_seconds"] for r in self.history),
            "seconds": sum(r["seconds"] for r in self.history),
        }

    def _restore(self, state: dict[str, Any]) -> None:
        self.student.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.graphed_step is not None:  # the momentum buffers are new tensors: a graph must be captured anew
            self.graphed_step.reset()
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.history = list(state["history"])
        self.best = dict(state["best"])

    # -------------------------------------------------------------------------------------------- loop
    def fit(
        self,
        *,
        callbacks: Iterable[EpochCallback] = (),
        resume: bool | str = False,
        force: bool = False,
        handle_sigint: bool = True,
    ) -> dict[str, Any]:
        """Train to ``cfg.epochs`` (continuing a saved state when resuming) and return the summary.

        ``resume=True`` continues from ``state.pth``, ``resume="checkpoint"`` from ``checkpoint.pth``; neither
        ever starts from scratch. The process owns ``out`` (its lock) from before the check to the end.
        """
        # --- safety (issue 13): one owner per run directory, taken before the check, released on any exit
        with owned_run_directory(self.out if self._writes() else None):
            return self._fit(callbacks=callbacks, resume=resume, force=force, handle_sigint=handle_sigint)

    def _fit(
        self, *, callbacks: Iterable[EpochCallback], resume: bool | str, force: bool, handle_sigint: bool
    ) -> dict[str, Any]:
        callbacks = list(callbacks)
        state = self._open_directory(resume, force)
        if state is not None:
            self._restore(state)
            if state["batch"] == 0:  # stopped at an epoch end: every generator continues from there
                restore_rng(state["rng"], self._loader_generators())
            if self._writes():  # drop lines of an epoch that was cut short before its state was committed
                write_jsonl(self.out / "metrics.jsonl", self.history)  # type: ignore[operator]
        self._evaluate_teacher()
        start_epoch = state["epoch"] if state is not None else 0
        show = not self.cfg.quiet and self.ctx.is_main
        with (
            _sigint_flag(handle_sigint) as stop,
            tqdm(
                total=self.cfg.epochs,
                initial=start_epoch,
                desc=f"{self.cfg.method} {self.cfg.arch}",
                unit="epoch",
                disable=not show,
                dynamic_ncols=True,
            ) as epoch_bar,
        ):
            for epoch in range(start_epoch, self.cfg.epochs):
                partial = state if state is not None and state["batch"] > 0 and state["epoch"] == epoch else None
                record = self._run_epoch(epoch, partial, stop, show)
                state = None
                epoch_bar.update(1)
                epoch_bar.set_postfix(loss=f"{record['train_loss']:.3f}", test_acc=f"{record['test_acc']:.2f}")
                for callback in callbacks if self.ctx.is_main else ():
                    callback(record)
        result = self.summary()
        result["history"] = list(self.history)
        return result

    def _run_epoch(
        self, epoch: int, partial: dict[str, Any] | None, stop: dict[str, bool], show: bool
    ) -> dict[str, Any]:
        cfg = self.cfg
        loader = self.train_loader
        generators = self._loader_generators()
        if partial is not None:  # mid-epoch resume: rewind the loader to the start of the interrupted epoch
            for name, generator in generators.items():
                generator.set_state(partial["epoch_start_generators"][name])
        epoch_start = {name: generator.get_state() for name, generator in generators.items()}
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)
        meter = TrainMeter(self.method.terms, self.device)
        self.method.set_epoch(epoch)  # terms with a schedule (a warm-up) follow the epoch
        skip, seconds_before = 0, 0.0
        if partial is not None:
            meter.load_state_dict(partial["meter"])
            skip, seconds_before = int(partial["batch"]), float(partial["train_seconds"])
        lr = self.optimizer.param_groups[0]["lr"]
        self.student.train()
        batches = iter(loader)
        for _ in range(skip):
            next(batches)
        if partial is not None:
            restore_rng(partial["rng"])  # the global generators as they were at the interruption
        bar = tqdm(
            total=len(loader),
            initial=skip,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            unit="batch",
            leave=False,
            disable=not show,
            dynamic_ncols=True,
        )
        _sync(self.device)
        start = time.perf_counter()
        batch_index = skip
        with bar:
            for images, labels in batches:
                images, labels = self._to_device(images, labels)
                global_size = labels.shape[0]
                self._step(*D.shard(images, labels, self.ctx), global_size, meter)
                batch_index += 1
                bar.update(1)
                if self._should_stop(stop, batch_index, len(loader)):
                    _sync(self.device)
                    seconds = seconds_before + time.perf_counter() - start
                    self._interrupt(epoch, batch_index, meter, epoch_start, seconds)
        _sync(self.device)
        train_seconds = seconds_before + time.perf_counter() - start
        train_part = meter.result(self.ctx)
        if not all(v is None or v == v and abs(v) != float("inf") for v in train_part.values()):
            raise TrainingDiverged(f"epoch {epoch + 1}: the training loss is not finite ({train_part})")
        self.scheduler.step()
        eval_start = time.perf_counter()
        test_part = self._evaluate()
        _sync(self.device)
        eval_seconds = time.perf_counter() - eval_start
        images_seen = meter.count * self.ctx.world_size
        record: dict[str, Any] = {"epoch": epoch + 1, "lr": lr, **train_part, **test_part}
        improved = self.best["test_acc"] is None or record["test_acc"] > self.best["test_acc"]
        if improved:
            self.best = {"test_acc": record["test_acc"], "epoch": epoch + 1}
        record.update(
            best_test_acc=self.best["test_acc"],
            teacher_test_acc=self.teacher_test_acc,
            images_per_s=images_seen / train_seconds if train_seconds > 0 else None,
            train_seconds=train_seconds,
            eval_seconds=eval_seconds,
            seconds=train_seconds + eval_seconds,
        )
        for key in ("kl_transformed_teacher", "kd_divergence", "teacher_agreement"):
            record.setdefault(key, None)
        self.history.append(record)
        if self._writes():
            self._save_epoch(epoch, record, improved)
        D.barrier(self.ctx)
        return record

    def _should_stop(self, stop: dict[str, bool], batch_index: int, num_batches: int) -> bool:
        if not self.ctx.enabled:
            return stop["stop"]
        if batch_index % _DDP_STOP_CHECK_EVERY and batch_index != num_batches:
            return False
        flag = torch.tensor([1.0 if stop["stop"] else 0.0], device=self.device)
        return bool(D.all_reduce_sum(flag, self.ctx).item() > 0)

    def _interrupt(self, epoch: int, batch: int, meter: TrainMeter, epoch_start: dict, seconds: float) -> None:
        where = f"epoch {epoch + 1}, batch {batch}"
        if self._writes():
            save_state(self.out / "state.pth", self._state(epoch, batch, meter, epoch_start, seconds))  # type: ignore
            raise TrainingInterrupted(
                f"interrupted at {where}; the state is saved in {self.out}: continue with resume (--resume)"
            )
        D.barrier(self.ctx)
        raise TrainingInterrupted(f"interrupted at {where}")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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


def load_run(out: str | Path) -> dict[str, Any]:
    """The files of a finished or running run directory: ``config``, ``metrics`` (list) and ``summary``."""
    out = Path(out)
    result: dict[str, Any] = {"config": json.loads((out / "config.json").read_text())}
    result["metrics"] = read_jsonl(out / "metrics.jsonl") if (out / "metrics.jsonl").is_file() else []
    summary = out / "summary.json"
    result["summary"] = json.loads(summary.read_text()) if summary.is_file() else None
    return result
