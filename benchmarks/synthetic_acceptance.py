"""Measured acceptance of the synthetic data set: does it behave like a distillation teaching device?

Trains CIFAR zoo models with plain cross-entropy on the synthetic set and reports test accuracy, superclass
accuracy, the share of test errors that stay inside the true superclass, the share of the wrong-class
probability mass on the true class's four siblings, the share of the superclass-level mistakes (and of the
probability mass on other superclasses) that falls inside the true superclass's family next to the share a uniform
spread over the other 19 superclasses would give, mean prediction entropy and wall-clock seconds.
Recipe: SGD (lr 0.05, momentum 0.9, weight decay 5e-4) with a one-cycle schedule, batch 64, crop + flip
augmentation on the device, bf16 autocast and channels_last on the CPU.

    python benchmarks/synthetic_acceptance.py [--arch resnet20 resnet8 resnet56] [--epochs 3] [--out FILE]

``tests/test_synthetic_acceptance.py`` asserts the acceptance criteria with :func:`train_and_evaluate`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from wttm_core.data import DEFAULT_DIFFICULTY, DeviceLoader, ImageDataset, load_dataset
from wttm_core.data.synthetic import DEFAULT_SIMILARITY, family_statistics
from wttm_core.models import build_model


def _autocast(device: torch.device) -> torch.autocast:
    return torch.autocast(device.type, dtype=torch.bfloat16)


def evaluate(model: torch.nn.Module, test: ImageDataset, device: torch.device) -> dict[str, float]:
    """Accuracy and "dark knowledge" statistics of ``model`` on ``test``."""
    model.eval()
    logits = []
    loader = DeviceLoader(test, 500, train=False, device=device, memory_format=torch.channels_last)
    with torch.no_grad(), _autocast(device):
        for images, _ in loader:
            logits.append(model(images).float().cpu())
    probs = torch.cat(logits).softmax(dim=1)
    labels, coarse = test.labels, test.fine_to_coarse
    pred = probs.argmax(dim=1)
    wrong = pred != labels
    siblings = coarse[None, :] == coarse[labels][:, None]
    siblings[torch.arange(len(labels)), labels] = False
    wrong_mass = 1 - probs[torch.arange(len(labels)), labels]
    return {
        "accuracy": (~wrong).double().mean().item(),
        "superclass_accuracy": (coarse[pred] == coarse[labels]).double().mean().item(),
        "errors_in_superclass": (coarse[pred[wrong]] == coarse[labels[wrong]]).double().mean().item(),
        "sibling_share_of_wrong_mass": ((probs * siblings).sum() / wrong_mass.sum()).item(),
        "mean_entropy": -(probs * probs.clamp_min(1e-12).log()).sum(dim=1).mean().item(),
        **family_statistics(probs, labels, coarse),
    }


def train_and_evaluate(
    arch: str,
    *,
    epochs: int = 3,
    train_size: int = 10_000,
    test_size: int = 2_000,
    difficulty: float = DEFAULT_DIFFICULTY,
    similarity: float = DEFAULT_SIMILARITY,
    seed: int = 0,
    batch_size: int = 64,
    augment: bool = True,
    device: str | None = None,
    verbose: bool = False,
) -> dict[str, float | str | int | bool]:
    """Train ``arch`` from scratch on the synthetic set with cross-entropy, then evaluate it (module doc)."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    options = {"difficulty": difficulty, "similarity": similarity}
    train = load_dataset("synthetic", "train", size=train_size, **options)
    test = load_dataset("synthetic", "test", size=test_size, **options)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(arch).to(dev, memory_format=torch.channels_last)
    loader = DeviceLoader(
        train,
        batch_size,
        train=True,
        augment=augment,
        device=dev,
        seed=seed,
        drop_last=True,
        memory_format=torch.channels_last,
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=0.05, total_steps=epochs * len(loader), pct_start=0.25
    )
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        loader.set_epoch(epoch)
        for images, labels in loader:
            with _autocast(dev):
                loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        if verbose:
            print(
                f"{arch} epoch {epoch + 1}/{epochs}: {time.perf_counter() - start:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    result: dict[str, float | str | int | bool] = {
        "arch": arch,
        "epochs": epochs,
        "train_size": train_size,
        "test_size": test_size,
        "difficulty": difficulty,
        "similarity": similarity,
        "seed": seed,
        "batch_size": batch_size,
        "augment": augment,
        "device": dev.type,
        "train_seconds": round(seconds, 1),
    }
    result.update({k: round(v, 4) for k, v in evaluate(model, test, dev).items()})
    return result


def _write_json(path: Path, content: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(handle, "w") as stream:
        json.dump(content, stream, indent=2)
    os.replace(temporary, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="+", default=["resnet20", "resnet8", "resnet56"])
    parser.add_argument("--epochs", type=int, nargs="+", default=[3])
    parser.add_argument("--train-size", type=int, default=10_000)
    parser.add_argument("--test-size", type=int, default=2_000)
    parser.add_argument("--difficulty", type=float, default=DEFAULT_DIFFICULTY)
    parser.add_argument("--similarity", type=float, default=DEFAULT_SIMILARITY)
    parser.add_argument("--seed", type=int, nargs="+", default=[0])
    parser.add_argument("--no-augment", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=None, help="write all results as JSON here")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    results = []
    for arch in args.arch:
        for epochs in args.epochs:
            for seed in args.seed:
                result = train_and_evaluate(
                    arch,
                    epochs=epochs,
                    train_size=args.train_size,
                    test_size=args.test_size,
                    difficulty=args.difficulty,
                    similarity=args.similarity,
                    seed=seed,
                    augment=not args.no_augment,
                    verbose=True,
                )
                print(json.dumps(result), flush=True)
                results.append(result)
    if args.out is not None:
        _write_json(args.out, results)


if __name__ == "__main__":
    main()
