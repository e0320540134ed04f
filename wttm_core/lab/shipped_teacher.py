"""The small trained teachers shipped in ``data/teachers/``, so the default profile does not train one first.

Notebooks 05 and 07 (profile ``cpu-quick``) distil from a resnet20 trained with cross-entropy for 6 epochs on the
first 5,000 synthetic images (the default stand-in: graded superclass similarity, :mod:`wttm_core.data.synthetic`);
notebook 07's question 9 compares two teachers of different architectures, resnet8 and resnet20, each trained to
convergence (60 epochs) on the students' first 1,000 images. Training them costs many minutes on a laptop CPU, so
the project ships all three (:data:`SHIPPED_TEACHERS`; ``data/teachers/synthetic-<arch>-n<images>-e<epochs>-s0.pth``,
the main resnet20 with its snapshots after 2 and 4 epochs). The files hold every weight matrix as int8 with one
float32 scale per output channel (symmetric per-channel quantisation) and the remaining tensors (batch-norm, biases)
as float16, together with the training configuration, a digest of the data it was trained on and the test accuracy of each *dequantised* snapshot (the network the students actually see;
numbers in ``benchmarks/RESULTS.md``, "The shipped teachers").

:func:`find_shipped_teacher` returns the shipped file when it fits a requested teacher run: same architecture,
data set, sizes, epochs, seed and recipe (the execution settings - device, precision - may differ) and the same
training data, byte for byte (a changed data generator makes the file unusable and the teacher is trained as
before). The file's SHA-256 is checked against :data:`SHIPPED_TEACHERS` before anything is read from it.
:func:`install_shipped_teacher` writes it out as an ordinary finished teacher run directory.

``python -m wttm_core.lab.shipped_teacher build --name NAME`` retrains one from scratch (CPU, one thread, a fixed
seed) and writes its file (``--name all``: every one); ``... build --check`` compares the result's digest with the
shipped one (bit-for-bit equality holds on the same CPU type and PyTorch version; other CPUs may round differently).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "SHIPPED_TEACHERS",
    "ShippedTeacher",
    "data_digest",
    "quantize_state",
    "dequantize_state",
    "flatten_state",
    "unflatten_state",
    "find_shipped_teacher",
    "install_shipped_teacher",
    "build_shipped_teacher",
    "main",
]

FORMAT = "wttm-shipped-teacher/2"
_TIMING = ("images_per_s", "train_seconds", "eval_seconds", "seconds")  # not stored: the file must be reproducible
# configuration fields that say how a run was executed, not what it computes: a shipped teacher fits either way
_EXECUTION = frozenset(
    {"data_dir", "device", "amp", "channels_last", "compile", "cuda_graphs", "deterministic", "teacher_dir",
     "download", "loader", "num_workers", "sync_bn", "world_size", "out", "quiet", "eval_precision"}
)  # fmt: skip


@dataclass(frozen=True)
class ShippedTeacher:
    """One shipped teacher file: its path inside the project, its SHA-256 and how it was made."""

    name: str
    path: str
    sha256: str
    arch: str
    train_size: int
    test_size: int
    epochs: int
    snapshots: tuple[int, ...]

    @property
    def command(self) -> str:
        return f"python -m wttm_core.lab.shipped_teacher build --name {self.name}"


def _synthetic(arch: str, images: int, epochs: int, snapshots: tuple[int, ...], sha256: str) -> ShippedTeacher:
    """A teacher trained on the first ``images`` synthetic training images, scored on the first 1,000 test images."""
    name = f"synthetic-{arch}-n{images}-e{epochs}-s0"
    return ShippedTeacher(name, f"data/teachers/{name}.pth", sha256, arch, images, 1000, epochs, snapshots)


SHIPPED_TEACHERS: dict[str, ShippedTeacher] = {
    t.name: t
    for t in (
        # the teacher of notebooks 05-07 (profile cpu-quick); the snapshots after 2 and 4 epochs serve question 9
        # by epochs (a user's choice: `strengths=[2, 4]`)
        _synthetic("resnet20", 5000, 6, (2, 4, 6), "89694fcf38f522b2759d5c315f6fb66cfe28fb5381cf98f004ed7f74328dba1b"),
        # notebook 07's question 9 at cpu-quick: two architectures, each trained to convergence on the students'
        # 1,000 images (the last 15 of 60 epochs within about 1 point; benchmarks/RESULTS.md)
        _synthetic("resnet8", 1000, 60, (60,), "a78e864785be9a01d268f9aae2643254d6ec01ee9460693bba16a45b6dab642d"),
        _synthetic("resnet20", 1000, 60, (60,), "d80406fa1c60656d69e8f29b875b12901cd623061ed04b926436d1def66e20ba"),
    )
}


def data_digest(data: tuple[Any, Any]) -> str:
    """SHA-256 of the train and test images and labels (the data a teacher was trained and tested on)."""
    digest = hashlib.sha256()
    for dataset in data:
        for tensor in (dataset.images, dataset.labels):
            digest.update(str((tuple(tensor.shape), str(tensor.dtype))).encode())
            digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()


def quantize_state(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Weight matrices (>= 2 dimensions) as int8 ``q`` with per-output-channel float32 ``scale`` (``w ~ q *
    scale``); other floating tensors as float16; integer tensors as they are."""
    packed: dict[str, Any] = {}
    for key, value in state.items():
        value = value.detach().cpu()
        if value.is_floating_point() and value.dim() >= 2:
            flat = value.float().reshape(value.shape[0], -1)
            scale = flat.abs().amax(dim=1).clamp_min(1e-12) / 127.0
            q = torch.round(flat / scale[:, None]).clamp(-127, 127).to(torch.int8).reshape(value.shape)
            packed[key] = {"q": q, "scale": scale}
        elif value.is_floating_point():
            packed[key] = value.to(torch.float16)
        else:
            packed[key] = value.clone()
    return packed


def dequantize_state(packed: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The float32 state dict of :func:`quantize_state`'s output."""
    state = {}
    for key, value in packed.items():
        if isinstance(value, Mapping):
            scale = value["scale"].float().reshape(-1, *([1] * (value["q"].dim() - 1)))
            state[key] = value["q"].float() * scale
        else:
            state[key] = value.float() if value.is_floating_point() else value
    return state


def flatten_state(packed: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`quantize_state`'s output as four flat tensors (int8 weights, float32 scales, float16 and int64
    tensors) plus names and shapes: a file of a few records, not hundreds (each costs its name and padding)."""
    parts: dict[str, list[torch.Tensor]] = {"int8": [], "scale": [], "half": [], "int": []}
    names, kinds, shapes = [], [], []
    for key, value in packed.items():
        names.append(key)
        if isinstance(value, Mapping):
            kinds.append("int8")
            shapes.append(list(value["q"].shape))
            parts["int8"].append(value["q"].reshape(-1))
            parts["scale"].append(value["scale"].reshape(-1))
        else:
            kinds.append("half" if value.is_floating_point() else "int")
            shapes.append(list(value.shape))
            parts[kinds[-1]].append(value.reshape(-1).to(torch.float16 if kinds[-1] == "half" else torch.int64))
    empty = {"int8": torch.int8, "scale": torch.float32, "half": torch.float16, "int": torch.int64}
    flat = {k: torch.cat(v) if v else torch.zeros(0, dtype=empty[k]) for k, v in parts.items()}
    return {"names": names, "kinds": kinds, "shapes": shapes, **flat}


def unflatten_state(flat: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`flatten_state`."""
    offsets = dict.fromkeys(("int8", "scale", "half", "int"), 0)

    def take(kind: str, count: int) -> torch.Tensor:
        start = offsets[kind]
        offsets[kind] += count
        return flat[kind][start : start + count]

    packed: dict[str, Any] = {}
    for key, kind, shape in zip(flat["names"], flat["kinds"], flat["shapes"], strict=True):
        count = int(torch.Size(shape).numel())
        if kind == "int8":
            packed[key] = {"q": take("int8", count).reshape(shape), "scale": take("scale", shape[0])}
        else:
            packed[key] = take(kind, count).reshape(shape)
    return packed


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _comparable(config: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a resolved configuration dict that decide what a teacher computes."""
    from wttm_core.engine.config import identity

    return {k: v for k, v in identity(dict(config)).items() if k not in _EXECUTION}


def _load(teacher: ShippedTeacher) -> dict[str, Any] | None:
    """The shipped file's content after its digest check; ``None`` when it is not installed with the package."""
    from wttm_core.resources import shipped

    try:
        path = shipped(teacher.path)
    except FileNotFoundError:
        return None
    found = _file_sha256(path)
    if found != teacher.sha256:
        raise ValueError(f"{path}: SHA-256 {found} differs from the recorded {teacher.sha256} (file damaged?)")
    content = torch.load(path, map_location="cpu", weights_only=True)
    if content.get("format") != FORMAT:
        raise ValueError(f"{path}: not a shipped teacher file (format {content.get('format')!r})")
    return content


def find_shipped_teacher(
    config: Any, data: tuple[Any, Any] | None, snapshots: Sequence[int] | None
) -> tuple[ShippedTeacher, dict[str, Any]] | None:
    """The shipped teacher (and its content) that fits the teacher run ``config`` trained on ``data``, holding
    every epoch of ``snapshots`` (``None``: any), or ``None``."""
    from wttm_core.engine import config_to_dict, resolve_config

    if data is None:
        return None
    for teacher in SHIPPED_TEACHERS.values():
        if (config.arch, config.dataset, config.epochs) != (teacher.arch, "synthetic", teacher.epochs):
            continue
        if snapshots is not None and not set(snapshots) <= set(teacher.snapshots):
            continue
        content = _load(teacher)
        if content is None:
            continue
        wanted = _comparable(json.loads(json.dumps(config_to_dict(resolve_config(config)))))
        # the stored configuration is filtered by today's rules too (a field may have stopped counting since)
        if wanted == _comparable(content["config"]) and _same_data(data, teacher, content["data_sha256"]):
            return teacher, content
    return None


def _reference_data(teacher: ShippedTeacher) -> tuple[Any, Any]:
    """The teacher's training data as its build made it: generated on one thread."""
    from wttm_core.lab.experiments.orchestrate import load_data

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return load_data("synthetic", teacher.train_size, teacher.test_size)
    finally:
        torch.set_num_threads(threads)


def _same_data(data: tuple[Any, Any], teacher: ShippedTeacher, digest: str) -> bool:
    """Whether ``data`` is the data the teacher was trained and tested on.

    The synthetic generator's float rounding depends on the number of threads (2 of 15.4 million pixels differ
    between 1 and 2 threads), so unless the digest matches exactly, the data is regenerated on one thread, as the
    build did: that must match the digest (the generator is unchanged), and ``data`` may differ from it only by
    such rounding (same labels; at most 0.01 % of the pixels, each by at most 2).
    """
    if data_digest(data) == digest:
        return True
    if tuple(len(d) for d in data) != (teacher.train_size, teacher.test_size):
        return False
    reference = _reference_data(teacher)
    if data_digest(reference) != digest:
        return False
    for given, made in zip(data, reference, strict=True):
        if not torch.equal(given.labels, made.labels) or given.images.shape != made.images.shape:
            return False
        differ = given.images != made.images
        if differ.float().mean() > 1e-4 or (given.images.int() - made.images.int()).abs().max() > 2:
            return False
    return True


def install_shipped_teacher(
    teacher: ShippedTeacher, content: Mapping[str, Any], out: Path, config: Any, log: Callable[[str], None] = print
) -> None:
    """Write the shipped teacher into ``out`` as a finished run of ``config``: ``config.json``, ``metrics.jsonl``
    (the original training's rows; ``test_acc`` of the shipped epochs is the dequantised snapshot's),
    ``summary.json``, ``checkpoint.pth`` and ``checkpoint_epoch<e>.pth``."""
    from wttm_core.atomic import atomic_write, write_text_atomic
    from wttm_core.engine import config_to_dict, resolve_config
    from wttm_core.models import build_model, save_checkpoint

    out.mkdir(parents=True, exist_ok=True)
    accuracy = {int(e): float(a) for e, a in content["test_acc"].items()}
    for epoch in teacher.snapshots:
        model = build_model(teacher.arch, int(content["num_classes"]))
        model.load_state_dict(dequantize_state(unflatten_state(content["snapshots"][str(epoch)])), strict=True)
        path = out / ("checkpoint.pth" if epoch == teacher.epochs else f"checkpoint_epoch{epoch}.pth")
        save_checkpoint(path, model, arch=teacher.arch, epoch=epoch, accuracy=accuracy[epoch])
    with atomic_write(out / f"checkpoint_epoch{teacher.epochs}.pth", "wb") as handle:
        handle.write((out / "checkpoint.pth").read_bytes())
    rows = json.loads(content["metrics"])
    for row in rows:
        row.update({key: None for key in _TIMING}, shipped=True)  # not timed here
        if row["epoch"] in accuracy:
            row["test_acc_float"], row["test_acc"] = row["test_acc"], accuracy[row["epoch"]]
    summary = json.loads(content["summary"]) | {"last_test_acc": accuracy[teacher.epochs], "shipped": teacher.path}
    summary.update({key: None for key in _TIMING if key in ("train_seconds", "seconds")})
    origin = {"file": teacher.path, "sha256": teacher.sha256}
    record = config_to_dict(resolve_config(config)) | {"shipped_teacher": origin}
    write_text_atomic(out / "metrics.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2))
    write_text_atomic(out / "config.json", json.dumps(record, indent=2))  # last: it marks the run as present
    log(f"teacher: the shipped {teacher.arch} ({teacher.path}, digest checked; test accuracy "
        f"{accuracy[teacher.epochs]:.2f}%) installed in {out}")  # fmt: skip


def _untimed(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` without its wall-clock measurements (they differ between two builds of the same file)."""
    return {key: value for key, value in record.items() if key not in _TIMING}


def _accuracy(checkpoint: Path, test: Any) -> float:
    """Top-1 test accuracy (%) of a checkpoint, computed as the students' teacher logits are."""
    from wttm_core.lab.experiments.orchestrate import teacher_logits

    logits = teacher_logits(checkpoint, test, device="cpu")
    return round(float((logits.argmax(1) == test.labels).float().mean()) * 100.0, 4)


def build_shipped_teacher(name: str, out: str | Path, *, threads: int = 1, log: Callable[[str], None] = print) -> str:
    """Train the shipped teacher ``name`` from scratch on the CPU and write its file to ``out``; return its
    SHA-256. Deterministic for a given CPU type, PyTorch version and ``threads``."""
    from wttm_core.engine import read_jsonl
    from wttm_core.lab.experiments.orchestrate import ensure_teacher, load_data
    from wttm_core.models import build_model, read_checkpoint, save_checkpoint

    teacher = SHIPPED_TEACHERS[name]
    torch.set_num_threads(threads)
    data = load_data("synthetic", teacher.train_size, teacher.test_size)
    with tempfile.TemporaryDirectory(prefix="wttm-teacher-") as work:
        run = ensure_teacher(
            teacher.arch,
            dataset="synthetic",
            epochs=teacher.epochs,
            data=data,
            device="cpu",
            root=work,
            snapshot_epochs=teacher.snapshots,
            quiet=True,
            log=log,
            use_shipped=False,
        )
        packed, accuracy = {}, {}
        for epoch in teacher.snapshots:
            source = run / ("checkpoint.pth" if epoch == teacher.epochs else f"checkpoint_epoch{epoch}.pth")
            packed[str(epoch)] = flatten_state(quantize_state(read_checkpoint(source)["model"]))
            model = build_model(teacher.arch, data[0].num_classes)
            model.load_state_dict(dequantize_state(unflatten_state(packed[str(epoch)])), strict=True)
            probe = Path(work) / f"dequantised{epoch}.pth"
            save_checkpoint(probe, model, arch=teacher.arch, epoch=epoch, accuracy=0.0)
            accuracy[str(epoch)] = _accuracy(probe, data[1])
        content = {
            "format": FORMAT,
            "arch": teacher.arch,
            "num_classes": data[0].num_classes,
            "config": _comparable(json.loads((run / "config.json").read_text())),
            "data_sha256": data_digest(data),
            "snapshots": packed,
            "test_acc": accuracy,
            "metrics": json.dumps([_untimed(row) for row in read_jsonl(run / "metrics.jsonl")]),
            "summary": json.dumps(_untimed(json.loads((run / "summary.json").read_text()))),
            "command": teacher.command,
        }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(content, out)
    log(f"{out}: {out.stat().st_size / 1e6:.2f} MB, dequantised test accuracy by epoch {accuracy}")
    return _file_sha256(out)


def _build_one(name: str, out: str | None, check: bool, threads: int) -> int:
    """Build the shipped teacher ``name`` (see :func:`main`); 0, 1 (``check`` found another digest) or 2."""
    teacher = SHIPPED_TEACHERS[name]
    if out:
        path = Path(out)
    elif check:
        path = Path(tempfile.mkdtemp(prefix="wttm-teacher-check-")) / Path(teacher.path).name
    else:
        from wttm_core.resources import checkout_root

        root = checkout_root()
        if root is None:
            print("error: --out: no checkout to write the shipped file into; give --out", file=sys.stderr)
            return 2
        path = root / teacher.path
    digest = build_shipped_teacher(name, path, threads=threads)
    print(f"sha256 {digest}  {path}")
    if not check:
        return 0
    same = digest == teacher.sha256
    print("identical to the shipped file" if same else f"DIFFERS from the shipped file ({teacher.sha256})")
    return 0 if same else 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m wttm_core.lab.shipped_teacher build [--name NAME|all] [--out PATH] [--check]``."""
    parser = argparse.ArgumentParser(
        prog="python -m wttm_core.lab.shipped_teacher", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="retrain a shipped teacher from scratch and write its file")
    build.add_argument("--name", default=next(iter(SHIPPED_TEACHERS)), choices=[*sorted(SHIPPED_TEACHERS), "all"])
    build.add_argument("--out", help="file to write (default: a temporary file when --check, else the shipped path)")
    build.add_argument("--check", action="store_true", help="compare the new file's SHA-256 with the recorded one")
    build.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    names = list(SHIPPED_TEACHERS) if args.name == "all" else [args.name]
    if args.out and len(names) > 1:
        parser.error("--out: one file, but --name all builds several; give --name")
    codes = [_build_one(name, args.out, args.check, args.threads) for name in names]
    return max(codes)


if __name__ == "__main__":
    sys.exit(main())
