"""Question 6 with shared parameters: does WTTM's re-weighting help a student whose samples compete for weights?

In the free-logit toy (:mod:`~wttm_core.theory.flows`) every sample has its own logits, so WTTM's weights
``U_gamma(p^t)`` (Eq. 22) only change each sample's step size and the weights' mean (``>= 1``) makes WTTM take
larger steps overall. Here the student is linear on fixed features, ``z = x W + b``: one ``W`` serves every
sample, so how the distillation weight is spread over the samples decides which targets the shared parameters
fit best. To separate the re-weighting from the step size, WTTM's weights are divided by their mean over the
training set ("equal mean strength": the same total weight as TTM, only its distribution differs; the paper's
Fig. 1 compares at ``beta / mean U`` for the same reason).

Everything is full-batch gradient descent in float64 on the distillation term alone (no cross-entropy, as in the
paper's Fig. 2), with the closed-form gradient ``w_i (q_i - p^t_{T,i})`` of Eq. 20 per sample, so a run takes
well under a second on a CPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from wttm_core._checks import check_int, check_scalar
from wttm_core.functional import kd_ttm_decomposition, wttm_weights
from wttm_core.theory.teacher_model import sample_teacher_logits

__all__ = [
    "SharedStudentData",
    "SharedStudentRun",
    "WEIGHTINGS",
    "compare_weightings",
    "shared_student_data",
    "train_shared_student",
]

WEIGHTINGS = ("ttm", "wttm", "wttm-mean")


@dataclass(frozen=True)
class SharedStudentData:
    """Fixed features ``x`` ``[N, d]`` and teacher logits ``v`` ``[N, K]`` for training and held-out samples."""

    train_features: Tensor
    train_teacher: Tensor
    test_features: Tensor
    test_teacher: Tensor


@dataclass(frozen=True)
class SharedStudentRun:
    """Records at the step indices ``steps`` ``[R]``: the unweighted batch means of ``D(p^t_T || q)``.

    ``train`` and ``test`` are ``[R]``; ``per_sample_train`` is the final ``D`` per training sample ``[N]``.
    """

    weighting: str
    gamma: float
    lr: float
    steps: Tensor
    train: Tensor
    test: Tensor
    per_sample_train: Tensor


def shared_student_data(
    n_train: int = 400,
    n_test: int = 400,
    num_classes: int = 20,
    feature_dim: int = 8,
    *,
    noise: float = 0.5,
    seed: int = 0,
) -> SharedStudentData:
    """Teacher outputs from :func:`~wttm_core.theory.sample_teacher_logits` and features a linear map cannot fully use.

    The features are a fixed random projection of the (standardised) teacher logits to ``feature_dim < K``
    dimensions plus Gaussian noise of scale ``noise``: a linear student sees part of what the teacher knows, so it
    cannot match every sample at once and its samples compete for the shared weights.
    """
    n_train = check_int("n_train", n_train, low=1)
    n_test = check_int("n_test", n_test, low=1)
    feature_dim = check_int("feature_dim", feature_dim, low=1)
    noise = check_scalar("noise", noise, allow_zero=True)
    # the teacher model checks num_classes and seed, and gives each superclass at least two classes
    logits, _ = sample_teacher_logits(n_train + n_test, num_classes, num_superclasses=None, seed=seed)
    v = logits.double()
    num_classes = v.shape[1]
    gen = torch.Generator().manual_seed(seed + 1)
    projection = torch.randn(num_classes, feature_dim, generator=gen, dtype=torch.float64) / math.sqrt(num_classes)
    standardised = (v - v.mean(-1, keepdim=True)) / v.std(-1, keepdim=True)
    x = standardised @ projection + noise * torch.randn(len(v), feature_dim, generator=gen, dtype=torch.float64)
    return SharedStudentData(x[:n_train], v[:n_train], x[n_train:], v[n_train:])


def _mean_divergence(x: Tensor, weight: Tensor, bias: Tensor, v: Tensor, temperature: float) -> Tensor:
    return kd_ttm_decomposition(x @ weight + bias, v, temperature)["ttm"]


def train_shared_student(
    data: SharedStudentData, weighting: str, gamma: float, *, steps: int = 300, lr: float = 1.0, record_every: int = 10
) -> SharedStudentRun:
    """Full-batch gradient descent of a linear student ``z = x W + b`` (zero start) on a weighted TTM term.

    The loss is ``mean_i w_i D(p^t_{T,i} || q_i)`` (Eqs. 2, 23) with ``w_i = 1`` (``"ttm"``),
    ``w_i = U_gamma(p^t_i)`` (``"wttm"``, the paper's weights) or ``w_i = U_gamma(p^t_i) / mean_j U_gamma(p^t_j)``
    (``"wttm-mean"``: equal mean strength). Records the *unweighted* mean divergence on the training and held-out
    samples every ``record_every`` steps and after the last.
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    gamma = check_scalar("gamma", gamma)
    lr = check_scalar("lr", lr)
    steps = check_int("steps", steps, low=0)
    record_every = check_int("record_every", record_every, low=1)
    x, v = data.train_features, data.train_teacher
    temperature = 1.0 / gamma
    target = torch.softmax(v * gamma, dim=-1)  # p^t_T (Eqs. 8-9)
    if weighting == "ttm":
        w = torch.ones(len(v), dtype=torch.float64)
    else:
        w = wttm_weights(v, gamma).to(torch.float64)
        if weighting == "wttm-mean":
            w = w / w.mean()
    weight = torch.zeros(x.shape[1], v.shape[1], dtype=torch.float64)
    bias = torch.zeros(v.shape[1], dtype=torch.float64)
    recorded, train, test = [], [], []
    for step in range(steps + 1):
        if step % record_every == 0 or step == steps:
            recorded.append(step)
            train.append(float(_mean_divergence(x, weight, bias, v, temperature).mean()))
            test.append(
                float(_mean_divergence(data.test_features, weight, bias, data.test_teacher, temperature).mean())
            )
        if step == steps:
            break
        grad_z = w.unsqueeze(-1) * (torch.softmax(x @ weight + bias, dim=-1) - target) / len(v)  # Eq. 20, weighted
        weight = weight - lr * x.T @ grad_z
        bias = bias - lr * grad_z.sum(0)
    return SharedStudentRun(
        weighting=weighting,
        gamma=gamma,
        lr=lr,
        steps=torch.tensor(recorded),
        train=torch.tensor(train, dtype=torch.float64),
        test=torch.tensor(test, dtype=torch.float64),
        per_sample_train=_mean_divergence(x, weight, bias, v, temperature),
    )


def compare_weightings(
    data: SharedStudentData, gamma: float, lrs: Sequence[float], *, steps: int = 300
) -> dict[str, dict[float, SharedStudentRun]]:
    """:func:`train_shared_student` for every weighting and every step size in ``lrs`` (weighting -> lr -> run)."""
    return {
        weighting: {float(lr): train_shared_student(data, weighting, gamma, steps=steps, lr=float(lr)) for lr in lrs}
        for weighting in WEIGHTINGS
    }
