"""Images per second of a full distillation step: reference-style pipeline vs the engine vs the machine's ceiling.

A step is what training does per batch of 64: teacher forward (frozen), student forward, WTTM loss (Eq. 23),
backward, SGD update. Three pipelines are timed in the same process, on the same machine, one after another:

* ``reference``  - the CRD/TTM reference loop: a torch DataLoader with per-image PIL augmentation
  (``wttm_core.data.reference_loader``), float32, NCHW, teacher under ``no_grad``, and per-step bookkeeping as
  the reference code does it (``loss.item()``, top-1/top-5 accuracy);
* ``optimised``  - the engine's own step (``wttm_core.engine``): the device-resident loader with batched
  augmentation, the device's default precision and memory format (bf16 autocast + channels_last where it pays),
  teacher under ``inference_mode``, per-step metrics accumulated on the device;
* ``ceiling``    - the same step as ``optimised`` on one pre-made batch: no data pipeline, no metrics, no logging.

Usage::

    python benchmarks/train_step.py                              # CPU, 30 timed steps per pipeline in 3 rounds
    python benchmarks/train_step.py --device cuda --steps 200
    python benchmarks/train_step.py --device cuda --epoch-mode   # full epochs on the 50,000-image synthetic set
    python benchmarks/train_step.py --parity --seeds 0 1 2       # test accuracy: float32 reference vs fast path

Timings synchronise the device before reading the clock and discard warm-up steps; the three pipelines take
turns in rounds and the median round is reported. Results go to stdout as a table and, with ``--json PATH``, to
a file. Numbers in ``benchmarks/RESULTS.md`` come only from runs of this script.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from wttm_core.atomic import write_text_atomic
from wttm_core.data import ImageDataset, load_dataset, reference_loader
from wttm_core.engine import TrainConfig, build_method, prepare
from wttm_core.engine.metrics import TrainMeter, topk_correct
from wttm_core.engine.runtime import cpu_description, default_amp, default_channels_last, resolve_device
from wttm_core.models import build_model, save_checkpoint


@dataclass(frozen=True)
class Pair:
    """A teacher -> student pair with its Table 8 WTTM preset."""

    teacher: str
    student: str
    gamma: float
    beta: float

    @property
    def label(self) -> str:
        return f"{self.teacher} -> {self.student}"


PAIRS = (Pair("resnet32x4", "resnet8x4", 0.1, 3.0), Pair("resnet56", "resnet20", 0.3, 1.5))


@dataclass
class Timing:
    pair: str
    pipeline: str
    images_per_s: float
    ms_per_step: float
    steps: int
    amp: str
    channels_last: bool
    loader: str


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _endless(loader: object, set_epoch: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    epoch = 0
    while True:
        if set_epoch:
            loader.set_epoch(epoch)  # type: ignore[attr-defined]
        yield from loader  # type: ignore[misc]
        epoch += 1


def _time_steps(step: Callable[[], int], warmup: int, steps: int, device: str) -> tuple[float, float]:
    """Run ``warmup`` untimed then ``steps`` timed calls of ``step`` (returns images); (images/s, ms/step)."""
    for _ in range(warmup):
        step()
    _sync(device)
    start = time.perf_counter()
    images = sum(step() for _ in range(steps))
    _sync(device)
    seconds = time.perf_counter() - start
    return images / seconds, 1000.0 * seconds / steps


def _teacher_file(arch: str, folder: Path) -> Path:
    path = folder / f"{arch}.pth"
    if not path.exists():
        torch.manual_seed(0)
        save_checkpoint(path, build_model(arch), arch=arch, epoch=0, accuracy=0.0)
    return path


# ------------------------------------------------------------------------------------------------ pipelines
def reference_step_fn(
    pair: Pair, data: ImageDataset, device: str, batch_size: int, num_workers: int
) -> Callable[[], int]:
    """The reference-style loop: DataLoader + PIL augmentation, float32, NCHW, no_grad teacher, per-step .item()."""
    teacher = build_model(pair.teacher).to(device).eval()
    student = build_model(pair.student).to(device).train()
    optimizer = torch.optim.SGD(student.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    method = build_method("wttm", gamma=pair.gamma, beta=pair.beta)
    loader = reference_loader(data, batch_size, train=True, num_workers=num_workers, seed=0)
    if device.startswith("cuda"):
        loader.pin_memory = True
    batches = _endless(loader, set_epoch=False)
    meters = {"loss": 0.0, "top1": 0.0, "top5": 0.0}

    def step() -> int:
        images, labels = next(batches)
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        with torch.no_grad():
            teacher_logits = teacher(images)
        logits = student(images)
        loss = method(logits, teacher_logits, labels).total
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        meters["loss"] += loss.item() * len(labels)  # the reference's AverageMeter bookkeeping
        meters["top1"] += float(topk_correct(logits, labels, 1))
        meters["top5"] += float(topk_correct(logits, labels, 5))
        return len(labels)

    return step


def _engine_trainer(
    pair: Pair, data: ImageDataset, test: ImageDataset, device: str, batch_size: int, folder: Path, **overrides: object
):
    config = TrainConfig(
        arch=pair.student,
        method="wttm",
        teacher_checkpoint=str(_teacher_file(pair.teacher, folder)),
        teacher_arch=pair.teacher,
        gamma=pair.gamma,
        beta=pair.beta,
        batch_size=batch_size,
        device=device,
        quiet=True,
        **overrides,  # type: ignore[arg-type]
    )
    return prepare(config, data=(data, test))


def optimised_step_fn(trainer) -> Callable[[], int]:
    """The engine's own training step on the engine's device-resident loader, metrics included."""
    batches = _endless(trainer.train_loader, set_epoch=True)
    meter = TrainMeter(trainer.method.terms, trainer.device)
    trainer.student.train()

    def step() -> int:
        images, labels = next(batches)
        trainer._step(images, labels, len(labels), meter)
        return len(labels)

    return step


def ceiling_step_fn(trainer, batch_size: int) -> Callable[[], int]:
    """The engine's step (CUDA graph included where it is on) on one pre-made batch: no loader, no metrics."""
    fmt = torch.channels_last if trainer.cfg.channels_last else torch.contiguous_format
    images = torch.randn(batch_size, 3, 32, 32, device=trainer.device).contiguous(memory_format=fmt)
    labels = torch.randint(0, 100, (batch_size,), device=trainer.device)
    run = trainer.graphed_step if trainer.graphed_step is not None else trainer._train_step
    trainer.student.train()

    def step() -> int:
        run(images, labels)
        return batch_size

    return step


# ------------------------------------------------------------------------------------------------ modes
def run_steps(args: argparse.Namespace, device: str, folder: Path) -> list[Timing]:
    data = load_dataset("synthetic", "train", size=args.train_size)
    test = load_dataset("synthetic", "test", size=256)
    amp = args.amp if args.amp != "auto" else default_amp(device)
    channels_last = default_channels_last(device, amp)
    results = []
    for pair in _selected_pairs(args):
        torch.manual_seed(0)
        trainer = _engine_trainer(
            pair, data, test, device, args.batch_size, folder, amp=amp, channels_last=channels_last
        )
        pipelines = (
            (
                "reference",
                reference_step_fn(pair, data, device, args.batch_size, args.num_workers),
                "off",
                False,
                "DataLoader+PIL",
            ),
            ("optimised", optimised_step_fn(trainer), amp, channels_last, "DeviceLoader"),
            ("ceiling", ceiling_step_fn(trainer, args.batch_size), amp, channels_last, "none"),
        )
        for _, step, *_ in pipelines:
            for _ in range(args.warmup):
                step()
        # the pipelines take turns in --rounds rounds, so a drift in machine load hits all three alike
        per_round = max(1, args.steps // args.rounds)
        rounds = [[_time_steps(step, 0, per_round, device) for _, step, *_ in pipelines] for _ in range(args.rounds)]
        for index, (name, _, step_amp, step_channels_last, loader) in enumerate(pipelines):
            rate = statistics.median(r[index][0] for r in rounds)
            ms = statistics.median(r[index][1] for r in rounds)
            timed = per_round * args.rounds
            results.append(Timing(pair.label, name, rate, ms, timed, step_amp, step_channels_last, loader))
            _report(results[-1])
    return results


def _selected_pairs(args: argparse.Namespace) -> list[Pair]:
    """The pairs named by ``--pairs`` (as ``teacher->student``), or all of them."""
    return [p for p in PAIRS if not args.pairs or f"{p.teacher}->{p.student}" in args.pairs]


def _engine_variants(device: str) -> list[tuple[str, dict[str, object]]]:
    """The engine as it runs by default, and on CUDA also without CUDA graphs (to show what they give)."""
    variants: list[tuple[str, dict[str, object]]] = [("optimised (engine)", {})]
    if device.startswith("cuda"):
        variants.append(("optimised, no CUDA graphs", {"cuda_graphs": False}))
    return variants


def run_epochs(args: argparse.Namespace, device: str, folder: Path) -> list[dict[str, object]]:
    """Full epochs of both pipelines on the full synthetic set (the recipe's batch 64).

    Rows are written to ``--json`` after every pipeline, so a run stopped by a time limit keeps what it measured.
    """
    data = load_dataset("synthetic", "train", size=args.train_size)
    test = load_dataset("synthetic", "test", size=args.test_size)
    rows: list[dict[str, object]] = []

    def add(row: dict[str, object]) -> None:
        rows.append({**row, "images": len(data)})
        _report_epoch(rows[-1])
        _write_json(args, device, rows)

    for pair in _selected_pairs(args):
        steps_per_epoch = -(-len(data) // args.batch_size)
        step = reference_step_fn(pair, data, device, args.batch_size, args.num_workers)
        for epoch in range(args.epochs):
            _sync(device)
            start = time.perf_counter()
            for _ in range(steps_per_epoch):
                step()
            _sync(device)
            seconds = time.perf_counter() - start
            add({"pair": pair.label, "pipeline": "reference", "epoch": epoch + 1, "train_seconds": seconds})
        trainers = _engine_epochs(args, pair, data, test, device, folder, add)
        if trainers:  # the ceiling of the engine's default step
            rate, _ = _time_steps(ceiling_step_fn(trainers[0], args.batch_size), args.warmup, steps_per_epoch, device)
            seconds = len(data) / rate
            add({"pair": pair.label, "pipeline": "ceiling (pre-made batch)", "epoch": None, "train_seconds": seconds})
    return rows


def _engine_epochs(
    args: argparse.Namespace,
    pair: Pair,
    data: ImageDataset,
    test: ImageDataset,
    device: str,
    folder: Path,
    add: Callable[[dict[str, object]], None],
) -> list[object]:
    """Full epochs of each engine variant (a failing variant is reported, and the others still run)."""
    trainers = []
    for name, overrides in _engine_variants(device):
        try:
            torch.manual_seed(0)
            trainer = _engine_trainer(
                pair,
                data,
                test,
                device,
                args.batch_size,
                folder,
                epochs=args.epochs,
                test_batch_size=1024,
                compile=args.compile,
                **overrides,
            )
            summary = trainer.fit(handle_sigint=False)
        except Exception as error:  # a failing variant is reported, and the others still run
            add({"pair": pair.label, "pipeline": name, "epoch": None, "train_seconds": None, "error": repr(error)})
            continue
        for record in summary["history"]:
            add(
                {
                    "pair": pair.label,
                    "pipeline": name,
                    "epoch": record["epoch"],
                    "train_seconds": record["train_seconds"],
                    "eval_seconds": record["eval_seconds"],
                    "test_acc": record["test_acc"],
                    "amp": trainer.cfg.amp,
                    "channels_last": trainer.cfg.channels_last,
                    "cuda_graphs": trainer.cfg.cuda_graphs,
                }
            )
        trainers.append(trainer)
    return trainers


def _epoch_table(rows: list[dict[str, object]], images: int) -> str:
    """Per pair and pipeline: the first epoch, the median later epoch, images/s and the ratio to the reference."""
    lines = [f"{'pair':<24} {'pipeline':<28} {'1st epoch s':>11} {'later s':>8} {'img/s':>8} {'vs ref':>7}", "-" * 92]
    by_key: dict[tuple[str, str], list[dict[str, object]]] = {}
    for row in rows:
        by_key.setdefault((str(row["pair"]), str(row["pipeline"])), []).append(row)

    def steady(group: list[dict[str, object]]) -> float | None:
        seconds = [float(r["train_seconds"]) for r in group if r["train_seconds"] is not None]  # type: ignore[arg-type]
        return statistics.median(seconds[1:] or seconds) if seconds else None

    for (pair, pipeline), group in by_key.items():
        later, reference = steady(group), steady(by_key.get((pair, "reference"), []))
        if later is None:
            lines.append(f"{pair:<24} {pipeline:<28} failed: {group[0].get('error')}")
            continue
        first = group[0]["train_seconds"] if group[0]["epoch"] is not None else None
        ratio = f"{reference / later:6.2f}x" if reference else "-"
        first_text = f"{first:11.2f}" if first is not None else f"{'-':>11}"
        lines.append(f"{pair:<24} {pipeline:<28} {first_text} {later:8.2f} {images / later:8.0f} {ratio:>7}")
    return "\n".join(lines)


def _write_json(args: argparse.Namespace, device: str, payload: object) -> None:
    if args.json:
        text = json.dumps({"machine": _machine(device), "args": vars(args), "results": payload}, indent=2)
        write_text_atomic(args.json, text)


def run_parity(args: argparse.Namespace, device: str, folder: Path) -> list[dict[str, object]]:
    """Test accuracy of short synthetic distillation runs: float32 reference pipeline vs the fast path."""
    from wttm_core.engine import train

    data = load_dataset("synthetic", "train", size=args.train_size)
    test = load_dataset("synthetic", "test", size=args.test_size)
    teacher_out = folder / "parity_teacher"
    train(
        TrainConfig(
            arch=args.parity_teacher,
            epochs=args.parity_teacher_epochs,
            device=device,
            out=str(teacher_out),
            quiet=True,
            seed=100,
        ),
        data=(data, test),
        force=True,
    )
    rows: list[dict[str, object]] = []
    for seed in args.seeds:
        for name, overrides in (
            ("float32 reference pipeline", {"amp": "off", "channels_last": False, "loader": "reference"}),
            ("fast path", {}),
        ):
            config = TrainConfig(
                arch=args.parity_student,
                method="wttm",
                gamma=0.25,
                beta=2.0,
                teacher_checkpoint=str(teacher_out / "checkpoint.pth"),
                epochs=args.parity_epochs,
                device=device,
                seed=seed,
                quiet=True,
                **overrides,
            )
            summary = train(config, data=(data, test))
            rows.append(
                {
                    "pipeline": name,
                    "seed": seed,
                    "last_test_acc": summary["last_test_acc"],
                    "best_test_acc": summary["best_test_acc"],
                    "train_seconds": summary["train_seconds"],
                    "teacher_test_acc": summary["teacher_test_acc"],
                }
            )
            print(
                f"parity  {name:<28} seed {seed}: last {summary['last_test_acc']:.2f}%  best "
                f"{summary['best_test_acc']:.2f}%  ({summary['train_seconds']:.0f} s)",
                flush=True,
            )
    for name in ("float32 reference pipeline", "fast path"):
        accs = [r["last_test_acc"] for r in rows if r["pipeline"] == name]
        spread = statistics.stdev(accs) if len(accs) > 1 else 0.0
        print(f"parity  {name:<28} last test acc {statistics.mean(accs):.2f} +- {spread:.2f} over {len(accs)} seeds")
    return rows


# ------------------------------------------------------------------------------------------------ output
def _report(t: Timing) -> None:
    print(f"  {t.pair:<24} {t.pipeline:<10} {t.images_per_s:9.1f} img/s  {t.ms_per_step:8.1f} ms/step", flush=True)


def _report_epoch(row: dict[str, object]) -> None:
    took = f"{row['train_seconds']:.2f} s" if row["train_seconds"] is not None else f"failed: {row.get('error')}"
    print(f"  {row['pair']:<24} {row['pipeline']:<28} epoch {row['epoch']}: {took}", flush=True)


def _table(results: list[Timing]) -> str:
    lines = [
        f"{'pair':<24} {'pipeline':<10} {'img/s':>9} {'ms/step':>9} {'vs ref':>7} {'of ceiling':>10}  settings",
        "-" * 96,
    ]
    for t in results:
        ref = next(r for r in results if r.pair == t.pair and r.pipeline == "reference")
        top = next(r for r in results if r.pair == t.pair and r.pipeline == "ceiling")
        lines.append(
            f"{t.pair:<24} {t.pipeline:<10} {t.images_per_s:9.1f} {t.ms_per_step:9.1f} "
            f"{t.images_per_s / ref.images_per_s:6.2f}x {100 * t.images_per_s / top.images_per_s:9.0f}%  "
            f"amp={t.amp} channels_last={t.channels_last} loader={t.loader}"
        )
    return "\n".join(lines)


def _machine(device: str) -> str:
    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    return f"{cpu_description()}, {torch.get_num_threads()} threads (torch {torch.__version__})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--steps", type=int, default=30, help="timed steps per pipeline (30; --epoch-mode: whole epochs)"
    )
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (5)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="the pipelines take turns in this many rounds; medians are reported (3)"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--train-size",
        type=int,
        default=None,
        help="synthetic training images (default: 2,048 for steps and parity, 50,000 with --epoch-mode)",
    )
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers of the reference (0)")
    parser.add_argument("--amp", default="auto", choices=("auto", "off", "bf16", "fp16"))
    parser.add_argument("--pairs", nargs="*", default=None, help="e.g. resnet32x4->resnet8x4")
    parser.add_argument("--epoch-mode", action="store_true", help="time full epochs (for GPUs)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per pipeline in --epoch-mode (2)")
    parser.add_argument("--compile", action="store_true", help="torch.compile in --epoch-mode's engine run")
    parser.add_argument("--parity", action="store_true", help="accuracy parity instead of speed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--parity-teacher", default="resnet20")
    parser.add_argument("--parity-student", default="resnet8")
    parser.add_argument("--parity-teacher-epochs", type=int, default=4)
    parser.add_argument("--parity-epochs", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.steps < 1:
        parser.error("--rounds and --steps must be at least 1")
    device = resolve_device(args.device)
    if args.train_size is None:
        args.train_size = 50_000 if args.epoch_mode else 2048
    print(f"machine: {_machine(device)}; batch {args.batch_size}; synthetic train set {args.train_size}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.parity:
            payload: object = run_parity(args, device, folder)
        elif args.epoch_mode:
            payload = run_epochs(args, device, folder)
            print()
            print(_epoch_table(payload, args.train_size))
        else:
            timings = run_steps(args, device, folder)
            print()
            print(_table(timings))
            payload = [asdict(t) for t in timings]
    _write_json(args, device, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
