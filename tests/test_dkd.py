"""Decoupled KD (Zhao et al., CVPR 2022) against its textbook definition in float64, and in the engine."""

from __future__ import annotations

import pytest
import torch

from wttm_core.engine import TrainConfig, build_method, parse_method
from wttm_core.engine.config import resolve_config
from wttm_core.functional import dkd_loss, kd_loss

F64 = torch.float64


def batch(n: int = 6, k: int = 7, seed: int = 0, dtype: torch.dtype = F64):
    g = torch.Generator().manual_seed(seed)
    z = 3 * torch.randn(n, k, generator=g, dtype=F64)
    v = 5 * torch.randn(n, k, generator=g, dtype=F64)
    return z.to(dtype), v.to(dtype), torch.randint(0, k, (n,), generator=g)


def textbook_dkd(z, v, y, alpha, beta, t):
    """Row by row, with plain probabilities: T^2 (alpha KL(b^t||b^s) + beta KL(p_hat^t||p_hat^s))."""
    out = []
    for zi, vi, yi in zip(z, v, y.tolist(), strict=True):
        p, q = torch.softmax(vi / t, 0), torch.softmax(zi / t, 0)
        bp, bq = torch.stack([p[yi], 1 - p[yi]]), torch.stack([q[yi], 1 - q[yi]])
        tckd = (bp * (bp / bq).log()).sum()
        rest = [j for j in range(len(p)) if j != yi]
        ph, qh = p[rest] / p[rest].sum(), q[rest] / q[rest].sum()
        nckd = (ph * (ph / qh).log()).sum()
        out.append(t * t * (alpha * tckd + beta * nckd))
    return torch.stack(out)


@pytest.mark.parametrize(("alpha", "beta", "t"), [(1.0, 8.0, 4.0), (0.5, 2.0, 1.0), (2.0, 0.0, 7.5)])
def test_dkd_matches_the_textbook_formula(alpha, beta, t):
    z, v, y = batch()
    expected = textbook_dkd(z, v, y, alpha, beta, t)
    got = dkd_loss(z, v, y, alpha=alpha, beta=beta, temperature=t, reduction="none")
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(dkd_loss(z, v, y, alpha=alpha, beta=beta, temperature=t), expected.mean())
    torch.testing.assert_close(
        dkd_loss(z, v, y, alpha=alpha, beta=beta, temperature=t, reduction="sum"), expected.sum()
    )


def test_kd_is_tckd_plus_weighted_nckd():
    """Zhao et al.'s decomposition: KD = TCKD + (1 - p^t_y) NCKD (both times T^2)."""
    z, v, y = batch(seed=1)
    t = 4.0
    tckd = dkd_loss(z, v, y, alpha=1.0, beta=0.0, temperature=t, reduction="none")
    nckd = dkd_loss(z, v, y, alpha=0.0, beta=1.0, temperature=t, reduction="none")
    rest = 1 - torch.softmax(v / t, -1).gather(-1, y[:, None]).squeeze(-1)
    torch.testing.assert_close(tckd + rest * nckd, kd_loss(z, v, t, reduction="none"), rtol=1e-12, atol=1e-13)


def test_gradients_are_finite_and_match_autograd_of_the_textbook():
    z, v, y = batch(seed=2)
    z.requires_grad_()
    (grad,) = torch.autograd.grad(dkd_loss(z, v, y), z)
    (expected,) = torch.autograd.grad(textbook_dkd(z, v, y, 1.0, 8.0, 4.0).mean(), z)
    torch.testing.assert_close(grad, expected, rtol=1e-10, atol=1e-12)
    far = torch.zeros(2, 5, dtype=torch.float32, requires_grad=True)
    teacher = torch.tensor([[120.0, 0, 0, 0, 0], [0, 0, 0, 0, -120.0]])
    (grad,) = torch.autograd.grad(dkd_loss(far * 200, teacher, torch.tensor([0, 4])), far)
    assert bool(torch.isfinite(grad).all())
    assert torch.autograd.gradcheck(lambda s: dkd_loss(s, v, y), (z.detach().clone().requires_grad_(),))


def test_argument_errors_name_the_argument():
    z, v, y = batch()
    for kwargs, message in (
        ({"alpha": -1.0}, "alpha"),
        ({"beta": -0.5}, "beta"),
        ({"temperature": 0.0}, "temperature"),
    ):
        with pytest.raises(ValueError, match=message):
            dkd_loss(z, v, y, **kwargs)
    with pytest.raises(ValueError, match="reduction"):
        dkd_loss(z, v, y, reduction="avg")
    with pytest.raises(ValueError, match="labels"):
        dkd_loss(z, v, y[:-1])
    with pytest.raises(ValueError, match="labels"):
        dkd_loss(z, v, torch.full_like(y, 7))
    with pytest.raises(ValueError, match="same shape"):
        dkd_loss(z, v[:, :-1], y)
    with pytest.raises(ValueError, match="two classes"):
        dkd_loss(z[:, :1], v[:, :1], torch.zeros_like(y))


def test_dkd_in_the_engine_with_its_warmup():
    z, v, y = batch(dtype=torch.float32)
    method = build_method("dkd")
    assert method.terms == {"ce": 1.0, "dkd": 1.0}
    expected = dkd_loss(z, v, y)
    for epoch, factor in ((0, 1 / 20), (9, 0.5), (19, 1.0), (200, 1.0)):
        method.set_epoch(epoch)
        torch.testing.assert_close(method(z, v, y).parts["dkd"], factor * expected)
    added = build_method("wttm+0.5*dkd(beta=6,warmup=1)", gamma=0.25, beta=2.0)
    assert added.terms == {"ce": 1.0, "wttm": 2.0, "dkd": 0.5}
    assert added.hyperparameters()["dkd"]["beta"] == 6.0 and added.hyperparameters()["wttm"]["beta"] == 2.0
    torch.testing.assert_close(added(z, v, y).parts["dkd"], 0.5 * dkd_loss(z, v, y, beta=6.0))
    assert parse_method("ce+dkd").extras == ((1.0, "dkd"),)


def test_dkd_from_the_command_line_and_the_configuration(tmp_path, capsys, teacher_file):
    from wttm_core.cli import main

    cfg = resolve_config(TrainConfig(method="dkd", teacher_checkpoint=str(teacher_file), device="cpu"))
    assert cfg.gamma is None and cfg.preset_source is None  # no Table 8/9 preset applies to DKD
    tiny = ["--dataset", "synthetic", "--train-size", "32", "--test-size", "16", "--batch-size", "16"]
    args = ["distill", *tiny, "--student", "resnet8", "--teacher-checkpoint", str(teacher_file), "--epochs", "1"]
    assert main([*args, "--method", "dkd", "--device", "cpu", "--quiet", "--out", str(tmp_path / "r")]) == 0
    assert "dkd" in (tmp_path / "r" / "summary.json").read_text()
