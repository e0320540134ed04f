"""KD with logit standardisation (Sun et al., CVPR 2024) against its textbook definition in float64."""

from __future__ import annotations

import math

import pytest
import torch

from wttm_core.engine import build_method
from wttm_core.functional import kd_loss, lskd_loss

F64 = torch.float64


def batch(n: int = 5, k: int = 9, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    z = 3 * torch.randn(n, k, generator=g, dtype=F64) + 2
    v = 5 * torch.randn(n, k, generator=g, dtype=F64) - 1
    return z, v, torch.randint(0, k, (n,), generator=g)


def textbook_lskd(z, v, t):
    """Row by row: z-score with the sample standard deviation (K - 1), softmax at T, KL, times T^2."""
    out = []
    for zi, vi in zip(z, v, strict=True):
        k = len(zi)
        zs = [(x - sum(zi.tolist()) / k) for x in zi.tolist()]
        vs = [(x - sum(vi.tolist()) / k) for x in vi.tolist()]
        sz = math.sqrt(sum(x * x for x in zs) / (k - 1)) + 1e-7
        sv = math.sqrt(sum(x * x for x in vs) / (k - 1)) + 1e-7
        ez = [math.exp(x / sz / t) for x in zs]
        ev = [math.exp(x / sv / t) for x in vs]
        q = [e / sum(ez) for e in ez]
        p = [e / sum(ev) for e in ev]
        out.append(t * t * sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True)))
    return torch.tensor(out, dtype=F64)


@pytest.mark.parametrize("t", [2.0, 1.0, 5.0])
def test_lskd_matches_the_textbook_formula(t):
    z, v, _ = batch()
    expected = textbook_lskd(z, v, t)
    torch.testing.assert_close(lskd_loss(z, v, t, reduction="none"), expected, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(lskd_loss(z, v, t), expected.mean())
    torch.testing.assert_close(lskd_loss(z, v, t, reduction="sum"), expected.sum())


def test_standardisation_removes_shift_and_scale():
    """Only the logits' relations count: shifting or scaling either side leaves the loss unchanged, unlike KD."""
    z, v, _ = batch(seed=1)
    base = lskd_loss(z, v, reduction="none")
    shifted = lskd_loss(3 * z + 7, 0.5 * v - 2, reduction="none")
    torch.testing.assert_close(shifted, base, rtol=1e-6, atol=0)  # exact but for the 1e-7 guard on the std
    assert not torch.allclose(kd_loss(3 * z + 7, v, 2.0), kd_loss(z, v, 2.0))


def test_gradients_are_finite_and_match_autograd_of_the_definition():
    z, v, _ = batch(seed=2)
    z.requires_grad_()

    def definition(s):
        zs = (s - s.mean(-1, keepdim=True)) / (s.std(-1, keepdim=True) + 1e-7)
        vs = (v - v.mean(-1, keepdim=True)) / (v.std(-1, keepdim=True) + 1e-7)
        p, log_q = torch.softmax(vs / 2, -1), torch.log_softmax(zs / 2, -1)
        return 4 * (p * (p.log() - log_q)).sum(-1).mean()

    (grad,) = torch.autograd.grad(lskd_loss(z, v), z)
    (expected,) = torch.autograd.grad(definition(z), z)
    torch.testing.assert_close(grad, expected, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(lambda s: lskd_loss(s, v), (z.detach().clone().requires_grad_(),))
    constant = torch.zeros(2, 4, requires_grad=True)  # a constant row: the 1e-7 guard keeps it finite
    (grad,) = torch.autograd.grad(lskd_loss(constant, torch.randn(2, 4)), constant)
    assert bool(torch.isfinite(grad).all())


def test_argument_errors_name_the_argument():
    z, v, _ = batch()
    with pytest.raises(ValueError, match="temperature"):
        lskd_loss(z, v, 0.0)
    with pytest.raises(ValueError, match="reduction"):
        lskd_loss(z, v, reduction="avg")
    with pytest.raises(ValueError, match="same shape"):
        lskd_loss(z, v[:, :-1])
    with pytest.raises(ValueError, match="two classes"):
        lskd_loss(z[:, :1], v[:, :1])
    bad = z.clone()
    bad[0, 0] = math.nan
    with pytest.raises(ValueError, match="student_logits"):
        lskd_loss(bad, v)


def test_lskd_in_the_engine_and_in_sums(tmp_path, capsys, teacher_file):
    z, v, y = batch()
    method = build_method("lskd")
    assert method.terms == {"ce": 0.1, "lskd": 9.0}
    torch.testing.assert_close(method(z, v, y).parts["lskd"], 9.0 * lskd_loss(z, v, 2.0))
    added = build_method("wttm+0.5*lskd(temperature=3)", gamma=0.25, beta=2.0)
    assert added.terms == {"ce": 1.0, "wttm": 2.0, "lskd": 0.5}
    torch.testing.assert_close(added(z, v, y).parts["lskd"], 0.5 * lskd_loss(z, v, 3.0))
    from wttm_core.cli import main

    tiny = ["--dataset", "synthetic", "--train-size", "32", "--test-size", "16", "--batch-size", "16"]
    args = ["distill", *tiny, "--student", "resnet8", "--teacher-checkpoint", str(teacher_file), "--epochs", "1"]
    assert main([*args, "--method", "kd+lskd", "--device", "cpu", "--quiet", "--out", str(tmp_path / "r")]) == 0
    assert "lskd" in (tmp_path / "r" / "summary.json").read_text()
