"""Student-images per second of a cohort (one teacher pass per batch for all students) vs the same students
trained one after another (each run recomputing the teacher), side by side in one process.

Settings (issue 15):

* ``32x4``  - resnet32x4 -> three resnet8x4 students (KD, TTM, WTTM; one seed): the teacher forward is about two
  thirds of a step's arithmetic, so the arithmetic bound of the cohort is about 1.8x;
* ``20``    - resnet20 -> nine resnet8 students (KD, TTM, WTTM x learning rates 0.01, 0.05, 0.1).

Both variants are the engine's own steps on the engine's device-resident loader with the device's default
precision (bf16 autocast + channels_last on CPUs with bf16 instructions): ``sequential`` is each student's
whole step (teacher included, ``Trainer._step``) on batches of its own loader, student after student;
``cohort`` is :meth:`wttm_core.engine.loop.Cohort.train_step` (the teacher once, then each student's step) on
one loader's batches. The variants take turns in rounds (a drift in the load of a shared machine hits both
alike) and the median round is reported. Teachers have random weights (speed does not depend on them).

``--stacked`` adds a third variant, a **prototype kept in this benchmark** (not in the engine): the students of
one architecture stacked - their weights and BatchNorm buffers stacked (``torch.func.stack_module_state``), one
``vmap`` of ``functional_call`` for all their forwards (BatchNorm's running statistics update in place on the
stacked buffers), each student's own loss on its slice of the logits, one backward over the sum, and SGD with
momentum and weight decay as ``torch.optim.SGD`` computes it on the stacked tensors with each student's learning
rate. In float32 it equals the looped cohort step to rounding (tested after two steps in
``tests/test_benchmarks.py``); it does not replay as a CUDA graph and handles neither fp16's gradient scaler nor
DDP. See ``benchmarks/RESULTS.md`` for what putting it into the engine would take.

The table gives each setting's median speedup next to its goal (1.7x and 1.4x on the CPU) with the per-round
ratios; the machine, the threads and the load average (1 minute) at the start and at the end are printed with
it, since on a shared machine only a quiet run's numbers mean anything.

Usage::

    python benchmarks/cohort.py --goals --json cohort.json  # both goals, ~5-8 min on a quiet 2-core CPU
    python benchmarks/cohort.py                             # both settings, CPU, 3 rounds of 8 steps
    python benchmarks/cohort.py --settings 20 --steps 20 --rounds 5 --json cohort.json
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark's helpers
from train_step import _endless, _sync, _teacher_file  # noqa: E402

from wttm_core.atomic import write_text_atomic
from wttm_core.data import load_dataset
from wttm_core.engine import TrainConfig, prepare, prepare_cohort, speed
from wttm_core.engine.metrics import TrainMeter
from wttm_core.engine.runtime import autocast, cpu_description, resolve_device

METHODS = ("kd", "ttm", "wttm")
SETTINGS = {
    "32x4": ("resnet32x4", "resnet8x4", (0.05,)),
    "20": ("resnet20", "resnet8", (0.01, 0.05, 0.1)),
}
PRESET = {"gamma": 0.25, "beta": 2.0}  # one fixed gamma / beta: speed does not depend on them
GOALS = {"32x4": 1.7, "20": 1.4}  # issue 15's CPU goals: cohort / sequential student-images per second
GOAL_RUN = {"steps": 12, "warmup": 3, "rounds": 7}  # --goals: about 5-8 minutes on a quiet 2-core CPU


@dataclass
class Result:
    setting: str
    teacher: str
    students: int
    sequential_images_per_s: float
    cohort_images_per_s: float
    speedup: float
    rounds: list[tuple[float, ...]]
    amp: str
    channels_last: bool
    stacked_images_per_s: float | None = None


def _configs(setting: str, args: argparse.Namespace, device: str, folder: Path) -> list[TrainConfig]:
    teacher, student, lrs = SETTINGS[setting]
    checkpoint = str(_teacher_file(teacher, folder))
    return [
        TrainConfig(
            arch=student,
            method=method,
            teacher_checkpoint=checkpoint,
            teacher_arch=teacher,
            lr=lr,
            batch_size=args.batch_size,
            device=device,
            amp=args.amp,
            quiet=True,
            **PRESET,
        )
        for method in METHODS
        for lr in lrs
    ]


def sequential_fn(configs: list[TrainConfig], data: tuple) -> tuple[Callable[[int], int], object]:
    """``run(steps)``: each student alone (its own run, teacher included) for ``steps`` steps, one after another."""
    trainers = [prepare(config, data=data) for config in configs]
    streams = [(t, _endless(t.train_loader, set_epoch=True), TrainMeter(t.method.terms, t.device)) for t in trainers]
    for trainer in trainers:
        trainer.student.train()

    def run(steps: int) -> int:
        images_seen = 0
        for trainer, batches, meter in streams:
            for _ in range(steps):
                images, labels = next(batches)
                trainer._step(images, labels, len(labels), meter)
                images_seen += len(labels)
        return images_seen

    return run, trainers[0].cfg


def cohort_fn(configs: list[TrainConfig], data: tuple) -> Callable[[int], int]:
    """``run(steps)``: the cohort's step (teacher once, every student) for ``steps`` batches of one loader."""
    cohort = prepare_cohort(configs, data=data)
    batches = _endless(cohort.members[0].train_loader, set_epoch=True)
    meters = [TrainMeter(m.method.terms, m.device) for m in cohort.members]
    for member in cohort.members:
        member.student.train()

    def run(steps: int) -> int:
        for _ in range(steps):
            images, labels = next(batches)
            for meter, (parts, logits, weights) in zip(meters, cohort.train_step(images, labels), strict=True):
                meter.update(parts, logits, labels, weights)
        return steps * cohort.shared.cfg.batch_size * len(meters)

    return run


class StackedStep:
    """The prototype of a stacked cohort step for students of one architecture (see the module docstring)."""

    def __init__(self, members: list) -> None:
        from torch.func import stack_module_state

        groups = [m.optimizer.param_groups[0] for m in members]
        if len({m.cfg.arch for m in members}) != 1 or members[0].cfg.amp == "fp16":
            raise ValueError("a stacked step needs students of one architecture and no fp16 gradient scaler")
        if len({(g["momentum"], g["weight_decay"], g["dampening"], g["nesterov"]) for g in groups}) != 1:
            raise ValueError("a stacked step needs one momentum, weight decay and dampening, without Nesterov")
        self.members, self.cfg = members, members[0].cfg
        self.base = copy.deepcopy(members[0].student).to("meta")
        self.params, self.buffers = stack_module_state([m.student for m in members])
        self.lrs = torch.tensor([g["lr"] for g in groups], device=members[0].device)
        self.momentum, self.weight_decay = groups[0]["momentum"], groups[0]["weight_decay"]
        self.momentum_buffers: dict[str, torch.Tensor] = {}

    def _forward(self, params: dict, buffers: dict, images: torch.Tensor) -> torch.Tensor:
        from torch.func import functional_call

        return functional_call(self.base, (params, buffers), (images,))

    def __call__(self, images: torch.Tensor, labels: torch.Tensor, teacher_logits: torch.Tensor | None) -> list:
        """One step of every student (SGD as ``torch.optim.SGD``: ``b = m b + g + wd p`` (``b = g + wd p`` at
        first), ``p -= lr b``); returns each student's loss parts."""
        from torch.func import vmap

        with autocast(self.cfg.device, self.cfg.amp):
            logits = vmap(self._forward, in_dims=(0, 0, None))(self.params, self.buffers, images)
        parts = [m.method(logits[i], teacher_logits, labels) for i, m in enumerate(self.members)]
        names = list(self.params)
        grads = torch.autograd.grad(sum(p.total for p in parts), [self.params[n] for n in names])
        with torch.no_grad():
            for name, grad in zip(names, grads, strict=True):
                param = self.params[name]
                step = grad.add(param, alpha=self.weight_decay)
                if name in self.momentum_buffers:
                    step = self.momentum_buffers[name].mul_(self.momentum).add_(step)
                self.momentum_buffers[name] = step
                param.sub_(self.lrs.view(-1, *[1] * (param.dim() - 1)).to(param.dtype) * step)
        return parts


def stacked_fn(configs: list[TrainConfig], data: tuple) -> tuple[Callable[[int], int], StackedStep]:
    """``run(steps)``: the stacked prototype (teacher once, one vmapped forward for all students) for ``steps``
    batches of one loader."""
    cohort = prepare_cohort(configs, data=data)
    stacked = StackedStep(cohort.members)
    batches = _endless(cohort.members[0].train_loader, set_epoch=True)

    def run(steps: int) -> int:
        for _ in range(steps):
            images, labels = speed.to_device(*next(batches), cohort.shared.cfg)
            stacked(images, labels, cohort.shared.teacher_logits(images))
        return steps * cohort.shared.cfg.batch_size * len(cohort.members)

    return run, stacked


def _timed(run: Callable[[int], int], steps: int, device: str) -> float:
    _sync(device)
    start = time.perf_counter()
    images = run(steps)
    _sync(device)
    return images / (time.perf_counter() - start)


def measure(setting: str, args: argparse.Namespace, device: str, folder: Path, data: tuple) -> Result:
    configs = _configs(setting, args, device, folder)
    sequential, resolved = sequential_fn(configs, data)
    variants = [sequential, cohort_fn(configs, data)] + ([stacked_fn(configs, data)[0]] if args.stacked else [])
    for run in variants:
        run(args.warmup)
    rounds = []
    for index in range(args.rounds):
        rates = tuple(_timed(run, args.steps, device) for run in variants)
        rounds.append(rates)
        names = ("sequential", "cohort", "stacked")[: len(rates)]
        shown = "  ".join(f"{name} {rate:8.1f}" for name, rate in zip(names, rates, strict=True))
        print(f"  {setting:>5} round {index + 1}: {shown} student-img/s", flush=True)
    seq = statistics.median(r[0] for r in rounds)
    coh = statistics.median(r[1] for r in rounds)
    speedup = statistics.median(r[1] / r[0] for r in rounds)
    stacked = statistics.median(r[2] for r in rounds) if args.stacked else None
    teacher, channels_last = SETTINGS[setting][0], bool(resolved.channels_last)
    return Result(setting, teacher, len(configs), seq, coh, speedup, rounds, resolved.amp, channels_last, stacked)


def _table(results: list[Result]) -> str:
    lines = [
        f"{'teacher -> students':<30} {'sequential':>13} {'cohort':>9} {'speedup':>8} {'goal':>6}  met  "
        "per-round ratios / settings",
        f"{'':<30} {'student-img/s':>13} {'':>9} {'(median)':>8}",
        "-" * 110,
    ]
    for r in results:
        student = SETTINGS[r.setting][1]
        label = f"{r.teacher} -> {r.students} x {student}"
        goal = GOALS[r.setting]
        ratios = ", ".join(f"{rates[1] / rates[0]:.2f}" for rates in r.rounds)
        if r.stacked_images_per_s is not None:
            ratios = f"stacked {r.stacked_images_per_s:.1f} student-img/s; " + ratios
        lines.append(
            f"{label:<30} {r.sequential_images_per_s:13.1f} {r.cohort_images_per_s:9.1f} {r.speedup:7.2f}x "
            f"{goal:5.1f}x  {'yes' if r.speedup >= goal else 'NO ':3}  {ratios}; amp={r.amp} "
            f"channels_last={r.channels_last}"
        )
    return "\n".join(lines)


def _load() -> float | None:
    """The 1-minute load average (``None`` where the system has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _machine(device: str) -> dict[str, object]:
    name = torch.cuda.get_device_name() if device.startswith("cuda") else cpu_description()
    return {"device": name, "threads": torch.get_num_threads(), "cores": os.cpu_count(), "torch": torch.__version__}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="For the quiet benchmark of issue 15's goals: python benchmarks/cohort.py --goals --json cohort.json",
    )
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    parser.add_argument(
        "--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS), help="which settings (both)"
    )
    parser.add_argument(
        "--goals",
        action="store_true",
        help="both goals with {steps} timed steps, {warmup} warm-up steps, {rounds} rounds (overrides those flags; "
        "about 5-8 minutes on a quiet 2-core CPU)".format(**GOAL_RUN),
    )
    parser.add_argument(
        "--stacked", action="store_true", help="also time the stacked prototype (vmap over the students' weights)"
    )
    parser.add_argument("--steps", type=int, default=8, help="timed steps per variant and round (8)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per variant first (2)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; medians are reported (3)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per step (64)")
    parser.add_argument("--train-size", type=int, default=2048, help="synthetic training images (2,048)")
    parser.add_argument("--amp", default="auto", choices=("auto", "off", "bf16", "fp16"), help="autocast (auto)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.goals:
        args.settings = list(SETTINGS)
        vars(args).update(GOAL_RUN)
    if args.rounds < 1 or args.steps < 1 or args.warmup < 0:
        parser.error("--rounds and --steps must be at least 1, --warmup at least 0")
    device = resolve_device(args.device)
    machine, load_start, start = _machine(device), _load(), time.perf_counter()
    head = f"{machine['device']}, {machine['threads']} threads of {machine['cores']} cores, torch {machine['torch']}"
    print(f"machine: {head}; load average at start {load_start}", flush=True)
    data = load_dataset("synthetic", "train", size=args.train_size), load_dataset("synthetic", "test", size=64)
    with tempfile.TemporaryDirectory() as tmp:
        results = [measure(setting, args, device, Path(tmp), data) for setting in args.settings]
    load_end, seconds = _load(), time.perf_counter() - start
    print()
    print(f"machine: {head}")
    print(f"load average (1 min): {load_start} at start, {load_end} at the end; {seconds:.0f} s in all")
    print(f"{args.rounds} rounds of {args.steps} timed steps (after {args.warmup} warm-up), batch {args.batch_size}")
    print(_table(results))
    if args.json:
        payload = {
            "machine": machine,
            "load_average": {"start": load_start, "end": load_end},
            "seconds": seconds,
            "args": vars(args),
            "results": [asdict(r) | {"goal": GOALS[r.setting]} for r in results],
        }
        write_text_atomic(args.json, json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
