"""Issue 16: entropies from log-probabilities - finite gradients at any student logit gap (here 120, where float32's
softmax underflows to 0), for every function the training engine differentiates."""

from __future__ import annotations

import pytest
import torch

import wttm_core.functional as WF
from wttm_core.engine import build_method
from wttm_core.loss_terms import TERMS, WEIGHTINGS

GAP = 120.0


def gap_logits(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Student rows with a logit gap of 120 (softmax of the small classes is 0 in float32), a moderate teacher."""
    z = torch.tensor([[GAP, 0.0, -3.0, 1.0, 2.0], [0.5, -GAP, 0.0, GAP / 2, 1.0]], dtype=dtype)
    v = torch.tensor([[4.0, 1.0, 0.0, -2.0, 0.5], [0.0, 3.0, -1.0, 2.0, 1.0]], dtype=dtype)
    return z, v, torch.tensor([0, 3])


def grad_of(fn, dtype: torch.dtype) -> torch.Tensor:
    z, v, y = gap_logits(dtype)
    z.requires_grad_()
    (grad,) = torch.autograd.grad(fn(z, v, y), z)
    return grad


def assert_finite_and_equal_to_float64(fn) -> None:
    assert torch.softmax(gap_logits(torch.float32)[0], -1).min() == 0  # the case that used to give NaN
    grad32, grad64 = grad_of(fn, torch.float32), grad_of(fn, torch.float64)
    assert bool(torch.isfinite(grad32).all()), grad32
    torch.testing.assert_close(grad32.double(), grad64, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("alpha", [0.25, 0.75, 1.0, 2.0, float("inf")])
def test_public_entropies_from_logits(alpha):
    assert_finite_and_equal_to_float64(lambda z, v, y: WF.renyi_entropy_from_logits(z, alpha).sum())
    assert_finite_and_equal_to_float64(lambda z, v, y: WF.shannon_entropy_from_logits(z).sum())
    if alpha != float("inf"):
        assert_finite_and_equal_to_float64(lambda z, v, y: WF.power_sum_from_logits(z, alpha).sum())
    z = gap_logits(torch.float64)[0]
    torch.testing.assert_close(WF.renyi_entropy_from_logits(z, alpha), WF.renyi_entropy(torch.softmax(z, -1), alpha))


def test_the_old_probability_form_was_the_problem():
    z = gap_logits(torch.float32)[0].requires_grad_()
    (grad,) = torch.autograd.grad(WF.renyi_entropy(torch.softmax(z, -1), 0.25).sum(), z)
    assert not bool(torch.isfinite(grad).all())  # why the engine uses the log-probability form


@pytest.mark.parametrize("name", list(TERMS))
def test_every_engine_term(name):
    spec = name if TERMS[name].base else f"ce+{name}"
    method = build_method(spec, gamma=0.25, beta=2.0)
    method.set_epoch(100)
    for part in method.terms:
        assert_finite_and_equal_to_float64(lambda z, v, y, part=part: method(z, v, y).parts[part])


@pytest.mark.parametrize("weighting", WEIGHTINGS)
def test_every_wttm_weighting(weighting):
    method = build_method("wttm", gamma=0.25, beta=2.0, weighting=weighting)
    assert_finite_and_equal_to_float64(lambda z, v, y: method(z, v, y).total)
