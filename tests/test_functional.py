"""The functional core against closed forms in float64, identities as properties, numerics and bad input."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import wttm_core as W

F64 = torch.float64


def logits(n: int, k: int, scale: float = 3.0, seed: int = 0, dtype: torch.dtype = F64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(n, k, generator=g, dtype=F64)).to(dtype)


# ---- textbook formulas (softmax, pow, plain sums), the reference the core must agree with ---------------------


def textbook_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return (p * (p.log() - q.log())).sum(-1)


def textbook_transformed_teacher(v: torch.Tensor, gamma: float) -> torch.Tensor:
    p = torch.softmax(v, -1) ** gamma
    return p / p.sum(-1, keepdim=True)


def textbook_renyi(p: torch.Tensor, alpha: float) -> torch.Tensor:
    return torch.log((p**alpha).sum(-1)) / (1 - alpha)


seeds = st.integers(0, 10_000)
gammas = st.floats(0.05, 3.0)
temperatures = st.floats(1.0, 12.0)
shapes = st.tuples(st.integers(1, 6), st.integers(2, 40))


class TestClosedForms:
    @given(seed=seeds, shape=shapes, temperature=temperatures)
    @settings(max_examples=40, deadline=None)
    def test_kd_matches_textbook(self, seed, shape, temperature):
        z, v = logits(*shape, seed=seed), logits(*shape, seed=seed + 1, scale=5)
        expected = temperature**2 * textbook_kl(torch.softmax(v / temperature, -1), torch.softmax(z / temperature, -1))
        torch.testing.assert_close(W.kd_loss(z, v, temperature, reduction="none"), expected, rtol=1e-12, atol=1e-13)

    @given(seed=seeds, shape=shapes, gamma=gammas)
    @settings(max_examples=40, deadline=None)
    def test_ttm_and_wttm_match_textbook(self, seed, shape, gamma):
        z, v = logits(*shape, seed=seed), logits(*shape, seed=seed + 1, scale=5)
        kl = textbook_kl(textbook_transformed_teacher(v, gamma), torch.softmax(z, -1))
        weight = (torch.softmax(v, -1) ** gamma).sum(-1)
        torch.testing.assert_close(W.ttm_loss(z, v, gamma, reduction="none"), kl, rtol=1e-11, atol=1e-13)
        torch.testing.assert_close(W.wttm_loss(z, v, gamma, reduction="none"), weight * kl, rtol=1e-11, atol=1e-13)
        torch.testing.assert_close(W.wttm_weights(v, gamma), weight, rtol=1e-12, atol=0)

    def test_reductions(self):
        z, v = logits(7, 11), logits(7, 11, seed=3)
        for fn, hp in ((W.kd_loss, 4.0), (W.ttm_loss, 0.3), (W.wttm_loss, 0.3)):
            per_sample = fn(z, v, hp, reduction="none")
            assert per_sample.shape == (7,)
            torch.testing.assert_close(fn(z, v, hp), per_sample.mean())
            torch.testing.assert_close(fn(z, v, hp, reduction="sum"), per_sample.sum())

    def test_wttm_equals_ttm_for_one_hot_like_teacher(self):
        # U_gamma(p) = 1 for a one-hot teacher: WTTM and TTM coincide.
        v = torch.full((3, 10), -1e4, dtype=F64)
        v[:, 2] = 0.0
        z = logits(3, 10)
        torch.testing.assert_close(W.wttm_loss(z, v, 0.2), W.ttm_loss(z, v, 0.2), rtol=1e-12, atol=0)

    def test_renyi_matches_textbook_and_limits(self):
        p = torch.softmax(logits(5, 9), -1)
        for alpha in (0.1, 0.5, 0.9, 0.999, 1.001, 1.5, 2.0, 7.0):
            torch.testing.assert_close(W.renyi_entropy(p, alpha), textbook_renyi(p, alpha), rtol=1e-9, atol=1e-12)
        shannon = -(p * p.log()).sum(-1)
        torch.testing.assert_close(W.renyi_entropy(p, 1.0), shannon)
        torch.testing.assert_close(W.shannon_entropy(p), shannon)
        torch.testing.assert_close(W.renyi_entropy(p, 0.0), torch.full((5,), math.log(9), dtype=F64))
        torch.testing.assert_close(W.renyi_entropy(p, float("inf")), -p.max(-1).values.log())

    def test_renyi_is_continuous_at_one(self):
        p = torch.softmax(logits(4, 50, scale=4), -1)
        shannon = W.shannon_entropy(p)
        for eps in (1e-3, 1e-6, 1e-9, 1e-12):
            for alpha in (1 - eps, 1 + eps):
                assert (W.renyi_entropy(p, alpha) - shannon).abs().max() < 10 * eps + 1e-14

    def test_renyi_with_zero_probabilities(self):
        p = torch.tensor([[0.5, 0.5, 0.0, 0.0]], dtype=F64)
        for alpha in (0.0, 0.3, 1.0, 1.2, 3.0, float("inf")):
            torch.testing.assert_close(W.renyi_entropy(p, alpha), torch.tensor([math.log(2)], dtype=F64))
        torch.testing.assert_close(W.power_sum(p, 0.5), torch.tensor([2 * 0.5**0.5], dtype=F64))
        torch.testing.assert_close(W.power_transform(p, 0.3), p)


class TestDecomposition:
    """Eq. 15: D(p^t_T||q) = T D(p^t_T||q_T) - (T-1) H_{1/T}(q) + (T-1) H(p^t_T)."""

    @staticmethod
    def residual(z, v, temperature):
        d = W.kd_ttm_decomposition(z, v, temperature)
        rhs = temperature * d["kd"] - (temperature - 1) * d["renyi"] + (temperature - 1) * d["teacher_entropy"]
        return (d["ttm"] - rhs).abs().max().item()

    @given(seed=seeds, shape=shapes, temperature=st.floats(0.2, 20.0), scale=st.floats(0.01, 30.0))
    @settings(max_examples=80, deadline=None)
    def test_identity_on_random_logits(self, seed, shape, temperature, scale):
        z, v = logits(*shape, seed=seed, scale=scale), logits(*shape, seed=seed + 7, scale=scale)
        assert self.residual(z, v, temperature) <= 1e-10

    @pytest.mark.parametrize(
        "case",
        ["one_hot_teacher", "one_hot_student", "huge_logits", "equal_logits", "two_classes", "many_classes"],
    )
    def test_identity_on_adversarial_logits(self, case):
        z, v = logits(4, 100, seed=1), logits(4, 100, seed=2)
        if case == "one_hot_teacher":
            v = torch.full_like(v, -300.0)
            v[:, 0] = 300.0
        elif case == "one_hot_student":
            z = torch.full_like(z, -300.0)
            z[:, 3] = 300.0
        elif case == "huge_logits":
            z, v = 1e4 * torch.tanh(z), 1e4 * torch.tanh(v)
        elif case == "equal_logits":
            z, v = torch.zeros_like(z), torch.zeros_like(v)
        elif case == "two_classes":
            z, v = logits(16, 2, seed=3), logits(16, 2, seed=4)
        elif case == "many_classes":
            z, v = logits(2, 32000, seed=5), logits(2, 32000, seed=6)
        for temperature in (1.0, 2.0, 4.0, 10.0):
            d = W.kd_ttm_decomposition(z, v, temperature)
            assert all(torch.isfinite(t).all() for t in d.values())
            assert self.residual(z, v, temperature) <= 1e-10 * max(1.0, d["ttm"].abs().max().item())

    def test_terms_match_their_definitions(self):
        z, v, temperature = logits(6, 13), logits(6, 13, seed=9), 4.0
        d = W.kd_ttm_decomposition(z, v, temperature)
        torch.testing.assert_close(d["ttm"], W.ttm_loss(z, v, 1 / temperature, reduction="none"))
        torch.testing.assert_close(d["kd"], W.kd_loss(z, v, temperature, reduction="none") / temperature**2)
        torch.testing.assert_close(d["renyi"], W.renyi_entropy(torch.softmax(z, -1), 1 / temperature))
        torch.testing.assert_close(d["teacher_entropy"], W.shannon_entropy(torch.softmax(v / temperature, -1)))


class TestGradients:
    @pytest.mark.parametrize(
        ("loss", "grad", "hp"),
        [(W.kd_loss, W.kd_grad, 4.0), (W.ttm_loss, W.ttm_grad, 0.25), (W.wttm_loss, W.wttm_grad, 0.25)],
    )
    @pytest.mark.parametrize("scale", [0.1, 3.0, 40.0])
    def test_closed_form_equals_autograd(self, loss, grad, hp, scale):
        z = logits(5, 17, scale=scale).requires_grad_()
        v = logits(5, 17, seed=4, scale=scale)
        (autograd,) = torch.autograd.grad(loss(z, v, hp, reduction="sum"), z)
        torch.testing.assert_close(grad(z.detach(), v, hp), autograd, rtol=1e-10, atol=1e-13)

    @pytest.mark.parametrize(("loss", "hp"), [(W.kd_loss, 3.0), (W.ttm_loss, 0.3), (W.wttm_loss, 0.3)])
    def test_gradcheck(self, loss, hp):
        z = logits(3, 6).requires_grad_()
        v = logits(3, 6, seed=8)
        assert torch.autograd.gradcheck(lambda s: loss(s, v, hp, reduction="sum"), (z,))
        assert torch.autograd.gradgradcheck(lambda s: loss(s, v, hp), (z,))

    @pytest.mark.parametrize(
        ("loss", "grad", "hp"),
        [(W.kd_loss, W.kd_grad, 4.0), (W.ttm_loss, W.ttm_grad, 0.25), (W.wttm_loss, W.wttm_grad, 0.25)],
    )
    def test_torch_func_transforms(self, loss, grad, hp):
        # per-sample gradients (vmap of grad), forward mode (jvp) and Hessians work through the custom backward
        z, v, tangent = logits(4, 9), logits(4, 9, seed=2), logits(4, 9, seed=3)
        expected = grad(z, v, hp)

        def summed(s):
            return loss(s, v, hp, reduction="sum")

        torch.testing.assert_close(torch.func.grad(summed)(z), expected, rtol=1e-12, atol=1e-14)
        per_sample = torch.func.vmap(torch.func.grad(lambda zi, vi: loss(zi[None], vi[None], hp, reduction="sum")))
        torch.testing.assert_close(per_sample(z, v), expected, rtol=1e-12, atol=1e-14)
        _, directional = torch.func.jvp(summed, (z,), (tangent,))
        torch.testing.assert_close(directional, (expected * tangent).sum(), rtol=1e-12, atol=1e-14)
        hessian = torch.func.hessian(summed)(z)
        torch.testing.assert_close(hessian, torch.autograd.functional.hessian(summed, z), rtol=1e-10, atol=1e-13)
        assert hessian.abs().sum() > 0

    def test_teacher_receives_no_gradient(self):
        z = logits(4, 5).requires_grad_()
        v = logits(4, 5, seed=1).requires_grad_()
        (W.kd_loss(z, v, 4.0) + W.ttm_loss(z, v, 0.2) + W.wttm_loss(z, v, 0.2)).backward()
        assert v.grad is None and z.grad is not None
        assert not W.wttm_weights(v, 0.2).requires_grad


class TestProperties:
    @given(seed=seeds, shape=shapes)
    @settings(max_examples=30, deadline=None)
    def test_gamma_one_is_identity(self, seed, shape):
        p = torch.softmax(logits(*shape, seed=seed), -1)
        torch.testing.assert_close(W.power_transform(p, 1.0), p, rtol=1e-12, atol=1e-15)

    @given(seed=seeds, shape=shapes, g1=gammas, g2=gammas)
    @settings(max_examples=40, deadline=None)
    def test_composition(self, seed, shape, g1, g2):
        p = torch.softmax(logits(*shape, seed=seed), -1)
        torch.testing.assert_close(
            W.power_transform(W.power_transform(p, g1), g2), W.power_transform(p, g1 * g2), rtol=1e-9, atol=1e-15
        )
        lp = torch.log_softmax(logits(*shape, seed=seed), -1)
        torch.testing.assert_close(
            W.log_power_transform(W.log_power_transform(lp, g1), g2), W.log_power_transform(lp, g1 * g2)
        )

    @given(seed=seeds, shape=shapes, gamma=gammas)
    @settings(max_examples=40, deadline=None)
    def test_power_transform_is_temperature(self, seed, shape, gamma):
        z = logits(*shape, seed=seed)
        torch.testing.assert_close(W.power_transform(torch.softmax(z, -1), gamma), torch.softmax(gamma * z, -1))
        torch.testing.assert_close(W.log_power_transform(z, gamma), torch.log_softmax(gamma * z, -1))
        torch.testing.assert_close(W.transformed_teacher_log_probs(z, gamma), torch.log_softmax(gamma * z, -1))

    @given(seed=seeds, shape=shapes, scale=st.floats(0.01, 20.0))
    @settings(max_examples=40, deadline=None)
    def test_renyi_non_increasing_in_alpha(self, seed, shape, scale):
        p = torch.softmax(logits(*shape, seed=seed, scale=scale), -1)
        alphas = [0.0, 0.05, 0.3, 0.7, 0.99, 1.0, 1.01, 1.5, 2.0, 5.0, 50.0, float("inf")]
        values = torch.stack([W.renyi_entropy(p, a) for a in alphas])
        assert (values[1:] <= values[:-1] + 1e-12).all()
        k = shape[1]
        torch.testing.assert_close(values[0], torch.full_like(values[0], math.log(k)))
        assert (values[-1] >= 0).all()

    @given(seed=seeds, shape=shapes, gamma=st.floats(0.01, 0.99), scale=st.floats(0.0, 50.0))
    @settings(max_examples=60, deadline=None)
    def test_power_sum_bounds_and_renyi_link(self, seed, shape, gamma, scale):
        p = torch.softmax(logits(*shape, seed=seed, scale=scale), -1)
        k = shape[1]
        u = W.power_sum(p, gamma)
        assert (u >= 1 - 1e-12).all() and (u <= k ** (1 - gamma) * (1 + 1e-12)).all()
        torch.testing.assert_close(u.log(), (1 - gamma) * W.renyi_entropy(p, gamma), rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(W.log_power_sum(p.log(), gamma), u.log(), rtol=1e-12, atol=1e-12)

    def test_power_sum_extremes(self):
        uniform = torch.full((1, 100), 0.01, dtype=F64)
        torch.testing.assert_close(W.power_sum(uniform, 0.1), torch.tensor([100**0.9], dtype=F64))
        assert abs(W.power_sum(uniform, 0.1).item() - 63.1) < 0.05  # the facts sheet's example
        uniform = torch.full((1, 1000), 1e-3, dtype=F64)
        assert abs(W.power_sum(uniform, 0.8).item() - 3.98) < 0.005
        one_hot = torch.zeros(1, 100, dtype=F64)
        one_hot[0, 7] = 1
        torch.testing.assert_close(W.power_sum(one_hot, 0.1), torch.ones(1, dtype=F64))


class TestNumerics:
    def test_large_teacher_gap_has_no_underflow_cliff(self):
        # A gap of 110 underflows softmax(v) to exactly 0 in float32 before the power is taken; the log-domain
        # transform keeps the e^-11 share that softmax(gamma v) gives that class.
        v64 = torch.tensor([[110.0, 0.0, 0.0, 5.0]], dtype=F64)
        z64 = torch.tensor([[1.0, -2.0, 0.5, 0.0]], dtype=F64)
        exact_p = torch.softmax(0.1 * v64, -1)
        exact = textbook_kl(exact_p, torch.softmax(z64, -1))
        naive = torch.softmax(v64.float(), -1) ** 0.1
        assert naive[0, 1] == 0.0  # the reference formula loses the class entirely
        ours = W.ttm_loss(z64.float(), v64.float(), 0.1, reduction="none")
        torch.testing.assert_close(ours.double(), exact, rtol=1e-5, atol=0)
        weight = exact_p.new_tensor(1.0) * torch.exp(torch.logsumexp(0.1 * v64, -1) - 0.1 * torch.logsumexp(v64, -1))
        torch.testing.assert_close(W.wttm_weights(v64.float(), 0.1).double(), weight, rtol=1e-5, atol=0)
        wttm = W.wttm_loss(z64.float(), v64.float(), 0.1, reduction="none")
        torch.testing.assert_close(wttm.double(), weight * exact, rtol=1e-5, atol=0)

    def test_sharpening_weight_below_float32_range_gives_zero_not_nan(self):
        # gamma = 12 on a uniform teacher over 32000 classes: U = K^(1 - gamma) ~ 1e-50 is below float32's range,
        # so float32 WTTM is 0 (float64 ~ 1e-50) and its gradient 0, never NaN.
        z = torch.randn(3, 32000, generator=torch.Generator().manual_seed(1), requires_grad=True)
        v = torch.zeros(3, 32000)
        loss = W.wttm_loss(z, v, 12.0, reduction="none")
        expected = W.wttm_loss(z.detach().double(), v.double(), 12.0, reduction="none")
        assert (expected > 0).all() and (expected < 1e-45).all()
        assert torch.equal(loss, torch.zeros(3))
        loss.sum().backward()
        assert torch.isfinite(z.grad).all() and z.grad.abs().max() < 1e-30

    @pytest.mark.parametrize("k", [2, 10, 1000, 32000])
    def test_extreme_logits_stay_finite_and_accurate(self, k):
        g = torch.Generator().manual_seed(k)
        # float32-representable logits up to +-1e4, so that float64 on the same numbers is the exact reference
        v = ((torch.rand(3, k, generator=g) * 2 - 1) * 1e4).double()
        z = ((torch.rand(3, k, generator=g) * 2 - 1) * 1e4).double()
        for fn, hp in ((W.kd_loss, 4.0), (W.ttm_loss, 0.1), (W.wttm_loss, 0.1)):
            ref = fn(z, v, hp, reduction="none")
            got = fn(z.float(), v.float(), hp, reduction="none")
            assert torch.isfinite(got).all()
            # float32 rounding of log-probabilities of size ~1e4 is ~1e-3 absolute, hence 1e-4 relative
            torch.testing.assert_close(got.double(), ref, rtol=1e-4, atol=max(1e-7 * ref.abs().max().item(), 1e-6))

    @pytest.mark.parametrize(("fn", "hp"), [(W.kd_loss, 4.0), (W.ttm_loss, 0.25), (W.wttm_loss, 0.25)])
    def test_float32_matches_float64(self, fn, hp):
        z, v = logits(64, 100, seed=11), logits(64, 100, seed=12, scale=5)
        ref = fn(z, v, hp, reduction="none")
        got = fn(z.float(), v.float(), hp, reduction="none")
        assert got.dtype == torch.float32
        assert ((got.double() - ref).abs() / ref.abs()).max() <= 1e-5

    @pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
    def test_input_dtypes(self, dtype):
        z, v = logits(8, 20, seed=1, dtype=dtype), logits(8, 20, seed=2, dtype=dtype)
        expected_dtype = F64 if dtype == F64 else torch.float32
        for fn, hp in ((W.kd_loss, 4.0), (W.ttm_loss, 0.25), (W.wttm_loss, 0.25)):
            out = fn(z, v, hp)
            assert out.dtype == expected_dtype and torch.isfinite(out)
            # half inputs are exact half numbers: the result equals the float64 loss of those very numbers
            torch.testing.assert_close(out.double(), fn(z.double(), v.double(), hp), rtol=2e-6, atol=1e-7)
        p = torch.softmax(z.float(), -1).to(dtype)
        assert W.renyi_entropy(p.float(), 0.5).dtype == torch.float32

    def test_autocast_bf16(self):
        layer = torch.nn.Linear(16, 10)
        x = torch.randn(8, 16)
        teacher = torch.randn(8, 10)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            z = layer(x)
            assert z.dtype == torch.bfloat16
            loss = W.wttm_loss(z, teacher, 0.2) + W.kd_loss(z, teacher, 4.0) + W.ttm_loss(z, teacher, 0.2)
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
        loss.backward()
        assert torch.isfinite(layer.weight.grad).all()

    def test_mixed_precision_pair_is_upcast(self):
        z, v = logits(4, 10, dtype=torch.float32), logits(4, 10, seed=1, dtype=torch.bfloat16)
        assert W.ttm_loss(z, v, 0.3).dtype == torch.float32
        assert W.ttm_loss(z.double(), v, 0.3).dtype == F64


class TestModules:
    def test_modules_match_functions(self):
        z, v = logits(5, 8), logits(5, 8, seed=1)
        torch.testing.assert_close(W.KDLoss(4.0)(z, v), W.kd_loss(z, v, 4.0))
        torch.testing.assert_close(W.TTMLoss(0.2, reduction="sum")(z, v), W.ttm_loss(z, v, 0.2, reduction="sum"))
        torch.testing.assert_close(W.WTTMLoss(0.2, reduction="none")(z, v), W.wttm_loss(z, v, 0.2, reduction="none"))
        assert "gamma=0.2" in repr(W.WTTMLoss(0.2))

    def test_modules_validate_at_construction(self):
        with pytest.raises(ValueError, match="gamma"):
            W.WTTMLoss(0.0)
        with pytest.raises(ValueError, match="temperature"):
            W.KDLoss(-1.0)
        with pytest.raises(ValueError, match="reduction"):
            W.TTMLoss(0.5, reduction="batchmean")


class TestBadInput:
    z = logits(4, 6, dtype=torch.float32)
    v = logits(4, 6, seed=1, dtype=torch.float32)

    @pytest.mark.parametrize("fn", [W.kd_loss, W.ttm_loss, W.wttm_loss, W.kd_grad, W.ttm_grad, W.wttm_grad])
    def test_logit_checks_name_the_argument(self, fn):
        with pytest.raises(ValueError, match="same shape"):
            fn(self.z, self.v[:, :5], 0.5)
        with pytest.raises(ValueError, match="student_logits must be 2-D"):
            fn(self.z[0], self.v[0], 0.5)
        with pytest.raises(ValueError, match="teacher_logits must be 2-D"):
            fn(self.z, self.v[None], 0.5)
        with pytest.raises(TypeError, match="student_logits must be a floating-point tensor"):
            fn(self.z.long(), self.v, 0.5)
        with pytest.raises(TypeError, match="teacher_logits must be a torch.Tensor"):
            fn(self.z, self.v.tolist(), 0.5)
        with pytest.raises(ValueError, match="at least one row"):
            fn(self.z[:0], self.v[:0], 0.5)

    @pytest.mark.parametrize("fn", [W.kd_loss, W.ttm_loss, W.wttm_loss, W.kd_grad, W.ttm_grad, W.wttm_grad])
    @pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
    @pytest.mark.parametrize("which", ["student_logits", "teacher_logits"])
    def test_non_finite_logits_are_named(self, fn, bad, which):
        z, v = self.z.clone(), self.v.clone()
        (z if which == "student_logits" else v)[2, 3] = bad
        with pytest.raises(ValueError, match=f"{which} contains NaN or Inf"):
            fn(z, v, 0.5)

    @pytest.mark.parametrize("fn", [W.ttm_loss, W.wttm_loss, W.ttm_grad, W.wttm_grad, W.wttm_weights])
    def test_gamma_checks(self, fn):
        args = (self.v, 0.0) if fn is W.wttm_weights else (self.z, self.v)
        for bad in (0.0, -0.5, math.nan, math.inf):
            with pytest.raises(ValueError, match="gamma"):
                fn(*args[:-1], bad) if fn is W.wttm_weights else fn(*args, bad)
        with pytest.raises(TypeError, match="gamma must be a real number"):
            fn(*args[:-1], "0.5") if fn is W.wttm_weights else fn(*args, "0.5")

    def test_temperature_alpha_reduction_checks(self):
        with pytest.raises(ValueError, match="temperature must be > 0"):
            W.kd_loss(self.z, self.v, 0)
        with pytest.raises(ValueError, match="temperature must be finite"):
            W.kd_ttm_decomposition(self.z, self.v, math.inf)
        with pytest.raises(ValueError, match="reduction must be one of"):
            W.ttm_loss(self.z, self.v, 0.5, reduction="batchmean")
        p = torch.softmax(self.z, -1)
        with pytest.raises(ValueError, match="alpha must be >= 0"):
            W.renyi_entropy(p, -0.1)
        with pytest.raises(ValueError, match="alpha must be"):
            W.renyi_entropy(p, math.nan)

    def test_probability_checks(self):
        p = torch.softmax(self.z, -1)
        with pytest.raises(ValueError, match="p must be non-negative"):
            W.power_sum(p - 0.5, 0.5)
        with pytest.raises(ValueError, match="p must sum to 1"):
            W.renyi_entropy(p * 2, 0.5)
        with pytest.raises(ValueError, match="p contains NaN"):
            W.shannon_entropy(torch.full((2, 3), math.nan))
        with pytest.raises(TypeError, match="p must be a floating-point tensor"):
            W.power_transform(torch.ones(2, 3, dtype=torch.long), 0.5)
        with pytest.raises(ValueError, match="dim=3 is out of range"):
            W.power_transform(p, 0.5, dim=3)
        with pytest.raises(ValueError, match="log_p contains NaN"):
            W.log_power_transform(torch.full((2, 3), math.nan), 0.5)
        with pytest.raises(ValueError, match="entirely -Inf"):
            W.log_power_sum(torch.full((2, 3), -math.inf), 0.5)


def test_label_checks():
    from wttm_core._checks import check_labels

    z = torch.zeros(3, 4)
    assert check_labels(torch.tensor([0, 3, 1]), z) is not None
    for bad, error, message in (
        ([0, 1, 2], TypeError, "torch.Tensor"),
        (torch.tensor([0.0, 1.0, 2.0]), TypeError, "integer"),
        (torch.tensor([0, 1]), ValueError, "shape"),
        (torch.tensor([0, 4, 1]), ValueError, r"\[0, 4\)"),
        (torch.tensor([0, -1, 1]), ValueError, r"\[0, 4\)"),
    ):
        with pytest.raises(error, match=message):
            check_labels(bad, z)
