"""Forward + backward time of the KD / TTM / WTTM losses next to the reference formulas, in one run.

The reference is the straightforward implementation of the official code's formulas: ``softmax``, then
``pow`` (TTM / WTTM), then ``F.kl_div`` with ``reduction="batchmean"``. Both sides time a forward pass and the
backward pass into the student logits (the teacher logits are a frozen input), float32 on the chosen device.

    python benchmarks/losses.py [--device cpu] [--repeats 25] [--min-time 0.1]

Prints a table: per shape and loss, the median times of the reference and of ``wttm_core``, the median of
their per-round ratio and of WTTM's time relative to TTM's (every round times all six functions back to back,
in a shuffled order).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

import wttm_core as W
from wttm_core.engine.runtime import cpu_description

SHAPES = ((64, 100), (1024, 100), (4096, 1000), (256, 32000))
TEMPERATURE, GAMMA = 4.0, 0.25


def reference_kd(z: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    t = TEMPERATURE
    return F.kl_div(F.log_softmax(z / t, 1), F.softmax(v / t, 1), reduction="batchmean") * t * t


def _reference_transformed_teacher(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    powered = F.softmax(v, 1).pow(GAMMA)
    weight = powered.sum(1, keepdim=True)
    return powered / weight, weight.squeeze(1)


def reference_ttm(z: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    target, _ = _reference_transformed_teacher(v)
    return F.kl_div(F.log_softmax(z, 1), target, reduction="batchmean")


def reference_wttm(z: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    target, weight = _reference_transformed_teacher(v)
    return (weight * F.kl_div(F.log_softmax(z, 1), target, reduction="none").sum(1)).mean()


LOSSES: dict[str, tuple[Callable, Callable]] = {
    "kd": (reference_kd, lambda z, v: W.kd_loss(z, v, TEMPERATURE)),
    "ttm": (reference_ttm, lambda z, v: W.ttm_loss(z, v, GAMMA)),
    "wttm": (reference_wttm, lambda z, v: W.wttm_loss(z, v, GAMMA)),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def calls_for(fn: Callable, z: torch.Tensor, v: torch.Tensor, min_time: float) -> int:
    """How many back-to-back calls of ``fn`` last at least ``min_time`` seconds."""
    calls = 1
    while time_calls(fn, z, v, calls) * calls < min_time:
        calls *= 2
    return calls


def time_calls(fn: Callable, z: torch.Tensor, v: torch.Tensor, calls: int) -> float:
    """Seconds per forward + backward, averaged over ``calls`` back-to-back calls."""
    _sync(z.device)
    start = time.perf_counter()
    for _ in range(calls):
        z.grad = None
        fn(z, v).backward()
    _sync(z.device)
    return (time.perf_counter() - start) / calls


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=25, help="timed rounds; medians over rounds are reported")
    parser.add_argument("--min-time", type=float, default=0.1, help="seconds per timed round")
    args = parser.parse_args(argv)
    device = torch.device(args.device)

    print(
        f"machine: {cpu_description()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}, device {device}, float32, T={TEMPERATURE}, gamma={GAMMA}"
    )
    header = f"{'N x K':>11} {'loss':>5} {'reference ms':>13} {'wttm_core ms':>13} {'ratio':>6} {'vs ttm':>7}"
    print(header)
    print("-" * len(header))
    for n, k in SHAPES:
        g = torch.Generator().manual_seed(0)
        z = torch.randn(n, k, generator=g).to(device).requires_grad_()
        v = (4 * torch.randn(n, k, generator=g)).to(device)
        functions = {}
        for name, (reference, ours) in LOSSES.items():
            torch.testing.assert_close(ours(z, v), reference(z, v), rtol=1e-4, atol=1e-5)
            functions[("reference", name)], functions[("ours", name)] = reference, ours
        calls = {key: calls_for(fn, z, v, args.min_time) for key, fn in functions.items()}
        # every round times all six functions back to back (in a shuffled order, so that no function always
        # follows the same one), so a drift in machine load hits all of them alike; ratios are formed within a
        # round, then the median over rounds is reported
        order = random.Random(f"{n}x{k}")
        rounds = [
            {key: time_calls(functions[key], z, v, calls[key]) for key in order.sample(list(functions), len(functions))}
            for _ in range(args.repeats)
        ]
        for name in LOSSES:
            ref_s = statistics.median(r[("reference", name)] for r in rounds)
            our_s = statistics.median(r[("ours", name)] for r in rounds)
            ratio = statistics.median(r[("ours", name)] / r[("reference", name)] for r in rounds)
            vs_ttm = ""
            if name == "wttm":
                vs_ttm = f"{statistics.median(r[('ours', 'wttm')] / r[('ours', 'ttm')] for r in rounds):.2f}x"
            print(f"{n:>5} x {k:<5} {name:>5} {ref_s * 1e3:>13.3f} {our_s * 1e3:>13.3f} {ratio:>5.2f}x {vs_ttm:>7}")


if __name__ == "__main__":
    main()
