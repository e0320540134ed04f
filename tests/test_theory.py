"""Tests for wttm_core.theory: the derivation of Eq. 15, Eq. 19, optimal students, gradient flows, geometry."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import wttm_core as W
from wttm_core import theory as th

F64 = torch.float64


@pytest.fixture(autouse=True)
def _one_thread():
    """These tensors are tiny: one intra-op thread avoids thread wake-up costs on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _logits(seed: int, n: int, k: int, scale: float) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(n, k, generator=g, dtype=F64)


# --------------------------------------------------------------------------------------------- Eq. 19


def test_eq19_worked_example_of_fig1():
    assert th.beta_from_lambda(0.9, 4.0) == pytest.approx(36.0, abs=1e-12)
    assert th.lambda_from_beta(36.0, 4.0) == pytest.approx(0.9, abs=1e-15)


@given(lam=st.floats(0.001, 0.999), temperature=st.floats(1.0, 50.0))
def test_lambda_beta_round_trip(lam: float, temperature: float):
    beta = th.beta_from_lambda(lam, temperature)
    assert th.lambda_from_beta(beta, temperature) == pytest.approx(lam, rel=1e-12)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: th.beta_from_lambda(1.0, 4.0), "lam"),
        (lambda: th.beta_from_lambda(-0.1, 4.0), "lam"),
        (lambda: th.beta_from_lambda(0.5, 0.0), "temperature"),
        (lambda: th.lambda_from_beta(-1.0, 4.0), "beta"),
    ],
)
def test_eq19_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), lam=st.floats(0.05, 0.95), temperature=st.floats(1.0, 10.0))
def test_eq19_ttm_is_rescaled_kd_minus_renyi_up_to_a_student_independent_constant(seed, lam, temperature):
    v = _logits(seed, 6, 7, 4.0)
    labels = torch.arange(6) % 7
    beta = th.beta_from_lambda(lam, temperature)
    gaps = []
    for offset in range(5):
        z = _logits(seed + 1 + offset, 6, 7, 3.0)
        renyi = W.renyi_entropy(torch.softmax(z, -1), 1.0 / temperature)
        rescaled = (th.kd_objective(z, v, labels, lam, temperature) - lam * temperature * (temperature - 1) * renyi) / (
            1 - lam
        )
        gaps.append(th.ttm_objective(z, v, labels, beta, 1.0 / temperature) - rescaled)
    gaps = torch.stack(gaps)
    assert float((gaps - gaps[0]).abs().max()) <= 1e-9


# --------------------------------------------------------------------------------------------- Eqs. 11-15


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    k=st.integers(2, 40),
    scale=st.floats(0.1, 15.0),
    temperature=st.floats(1.0, 20.0),
)
def test_every_derivation_step_holds_in_float64(seed, k, scale, temperature):
    steps = th.derivation_steps(_logits(seed, 5, k, scale), _logits(seed + 1, 5, k, scale), temperature)
    assert [s.name for s in steps][-1] == "Eq. 15"
    assert len(steps) == 7
    for step in steps:
        assert step.lhs.shape == (5,) and step.lhs.dtype == F64
        assert step.residual <= 1e-10 * max(1.0, float(step.lhs.abs().max())), step.name


def test_derivation_steps_detect_a_wrong_identity():
    """The check is not vacuous: the Eq. 15 right-hand side at the wrong temperature misses by far."""
    z, v = _logits(0, 8, 10, 3.0), _logits(1, 8, 10, 3.0)
    right = th.eq15_terms(z, v, 4.0)
    wrong = th.eq15_terms(z, v, 4.5)
    assert float(right["residual"].abs().max()) <= 1e-12
    assert float((right["ttm"] - wrong["rhs"]).abs().max()) > 1e-3


def test_eq15_terms_extend_the_core_decomposition():
    z, v = _logits(2, 4, 6, 2.0).float(), _logits(3, 4, 6, 5.0).float()
    terms = th.eq15_terms(z, v, 3.0)
    core = W.kd_ttm_decomposition(z.double(), v.double(), 3.0)
    assert terms["rhs"].dtype == F64
    for key in core:
        assert torch.equal(terms[key], core[key])
    assert torch.allclose(terms["ttm"], terms["rhs"], rtol=0, atol=1e-12)


def test_decomposition_over_temperature():
    z, v = _logits(4, 16, 10, 2.0), _logits(5, 16, 10, 4.0)
    curves = th.decomposition_over_temperature(z, v, [1.0, 2.0, 4.0, 8.0])
    assert set(curves) == {"kd", "renyi", "teacher", "ttm"}
    assert curves["renyi"][0] == 0 and curves["teacher"][0] == 0
    assert curves["ttm"][0] == pytest.approx(float(curves["kd"][0]), abs=1e-12)
    combined = curves["kd"] - curves["renyi"] + curves["teacher"]
    assert torch.allclose(combined, curves["ttm"], rtol=0, atol=1e-10)
    expected_ttm_at_4 = float(W.ttm_loss(z, v, 0.25))
    assert float(curves["ttm"][2]) == pytest.approx(expected_ttm_at_4, abs=1e-12)
    with pytest.raises(ValueError, match="temperatures"):
        th.decomposition_over_temperature(z, v, [])


# --------------------------------------------------------------------------------------------- objectives


def test_objectives_are_differentiable_in_the_student_only():
    z = _logits(6, 3, 5, 1.0).requires_grad_()
    v = _logits(7, 3, 5, 3.0).requires_grad_()
    y = torch.tensor([0, 2, 4])
    th.ttm_objective(z, v, y, 2.0, 0.5).sum().backward()
    q = torch.softmax(z.detach(), -1)
    p_t = torch.softmax(0.5 * v.detach(), -1)
    onehot = torch.nn.functional.one_hot(y, 5).double()
    assert torch.allclose(z.grad, (q - onehot) + 2.0 * (q - p_t), atol=1e-12)
    assert v.grad is None


@pytest.mark.parametrize(
    ("labels", "error", "match"),
    [
        (torch.tensor([0.0, 1.0]), TypeError, "integer"),
        (torch.tensor([0, 5]), ValueError, r"\[0, 5\)"),
        (torch.tensor([0]), ValueError, "shape"),
        ([0, 1], TypeError, "labels"),
    ],
)
def test_bad_labels(labels, error, match):
    with pytest.raises(error, match=match):
        th.optimal_student_ttm(_logits(0, 2, 5, 1.0), labels, 1.0, 0.5)


# --------------------------------------------------------------------------------------------- optimal students


def test_ttm_optimum_is_the_closed_form_mixture_and_a_stationary_point():
    v, y = _logits(8, 6, 10, 4.0), torch.tensor([0, 3, 9, 1, 1, 5])
    q = th.optimal_student_ttm(v, y, 7.0, 0.25)
    p_t = torch.softmax(v / 4.0, -1)
    assert torch.allclose(q, (torch.nn.functional.one_hot(y, 10) + 7.0 * p_t) / 8.0, atol=1e-15)
    z = q.log().requires_grad_()
    th.ttm_objective(z, v, y, 7.0, 0.25).sum().backward()
    assert float(z.grad.abs().max()) <= 1e-12
    assert torch.equal(th.optimal_student_ttm(v, y, 0.0, 0.25), torch.nn.functional.one_hot(y, 10).double())


@pytest.mark.parametrize("lam", [0.01, 0.3, 0.9, 0.999])
@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0, 10.0])
def test_kd_optimum_is_a_stationary_point(lam, temperature):
    v, y = th.sample_teacher_logits(8, 20, num_superclasses=4, seed=3)
    q = th.optimal_student_kd(v, y, lam, temperature)
    assert q.dtype == F64 and q.shape == (8, 20)
    assert torch.allclose(q.sum(-1), torch.ones(8, dtype=F64))
    z = q.log().requires_grad_()
    th.kd_objective(z, v, y, lam, temperature).sum().backward()
    assert float(z.grad.abs().max()) <= 1e-8


def test_kd_optimum_closed_forms_at_t1_and_lambda1():
    v, y = _logits(9, 5, 8, 3.0), torch.tensor([1, 2, 3, 4, 0])
    p = torch.softmax(v, -1)
    at_t1 = th.optimal_student_kd(v, y, 0.4, 1.0)
    assert torch.allclose(at_t1, 0.6 * torch.nn.functional.one_hot(y, 8) + 0.4 * p, atol=1e-12)
    at_lam1 = th.optimal_student_kd(v, y, 1.0, 4.0)
    assert torch.allclose(at_lam1, p, atol=1e-12)  # q_T = p^t_T means q = p^t


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 1000), temperature=st.floats(1.5, 8.0), beta=st.floats(0.5, 80.0))
def test_ttm_optimum_has_the_larger_renyi_entropy_at_matched_weights(seed, temperature, beta):
    """TTM = KD - Renyi bonus (Eq. 19): its optimum's H_{1/T} can never be below KD's."""
    v, y = th.sample_teacher_logits(4, 10, num_superclasses=5, seed=seed)
    q_ttm = th.optimal_student_ttm(v, y, beta, 1.0 / temperature)
    q_kd = th.optimal_student_kd(v, y, th.lambda_from_beta(beta, temperature), temperature)
    gap = W.renyi_entropy(q_ttm, 1.0 / temperature) - W.renyi_entropy(q_kd, 1.0 / temperature)
    assert float(gap.min()) >= -1e-9


def test_optimal_student_kd_bad_input():
    v, y = _logits(0, 2, 4, 1.0), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="lam"):
        th.optimal_student_kd(v, y, 0.0, 4.0)
    with pytest.raises(ValueError, match="lam"):
        th.optimal_student_kd(v, y, 1.5, 4.0)
    with pytest.raises(TypeError, match="max_iter"):
        th.optimal_student_kd(v, y, 0.5, 4.0, max_iter=2.5)
    with pytest.raises(RuntimeError, match="did not converge"):
        th.optimal_student_kd(_logits(1, 2, 4, 8.0), y, 0.5, 4.0, max_iter=1, tol=1e-15)


# --------------------------------------------------------------------------------------------- gradient flows


def test_kd_flow_ends_at_the_teacher_and_ttm_flow_at_the_transformed_teacher():
    v = _logits(10, 16, 10, 3.0)
    z0 = 5.0 * torch.nn.functional.one_hot(torch.arange(16) % 10, 10).double()
    kd = th.gradient_flow(v, "kd", 4.0, steps=400, lr=2.0, student_logits=z0, record_every=10)
    ttm = th.gradient_flow(v, "ttm", 4.0, steps=400, lr=2.0, student_logits=z0, record_every=10)
    assert torch.allclose(torch.softmax(kd.final_logits, -1), torch.softmax(v, -1), atol=1e-6)
    assert torch.allclose(torch.softmax(ttm.final_logits, -1), torch.softmax(v / 4.0, -1), atol=1e-6)
    assert float(kd.tempered_divergence[-1].max()) < 1e-8 and float(kd.divergence[-1].min()) > 1e-3
    assert float(ttm.entropy[-1].mean()) > float(kd.entropy[-1].mean())
    # TTM is gradient descent on D(p_T||q) with a small enough step: never increases
    assert bool((ttm.divergence[1:] <= ttm.divergence[:-1] + 1e-12).all())


def test_flow_records_and_shapes():
    v = _logits(11, 3, 5, 2.0)
    flow = th.gradient_flow(v, "ttm", 2.0, steps=10, lr=0.5, record_every=4, record_probs=True)
    assert flow.steps.tolist() == [0, 4, 8, 10]
    assert flow.entropy.shape == flow.divergence.shape == flow.tempered_divergence.shape == (4, 3)
    assert flow.probs.shape == (4, 3, 5)
    assert torch.allclose(flow.probs[0], torch.full((3, 5), 0.2, dtype=F64))  # default start: uniform q
    assert torch.allclose(flow.entropy[0], torch.full((3,), math.log(5), dtype=F64))
    assert torch.allclose(flow.divergence[1], W.ttm_loss(_first_steps(v, 4), v, 0.5, reduction="none"), atol=1e-12)
    assert th.gradient_flow(v, "kd", 2.0, steps=3).probs is None


def _first_steps(v: torch.Tensor, n: int) -> torch.Tensor:
    z = torch.zeros_like(v)
    for _ in range(n):
        z = z - 0.5 * W.ttm_grad(z, v, 0.5)
    return z


def test_wttm_flow_steps_are_ttm_steps_scaled_by_the_weights():
    v = _logits(12, 6, 8, 4.0)
    ttm = th.gradient_flow(v, "ttm", 4.0, steps=1, lr=0.1)
    wttm = th.gradient_flow(v, "wttm", 4.0, steps=1, lr=0.1)
    normalised = th.gradient_flow(v, "wttm", 4.0, steps=1, lr=0.1, normalize_weights=True)
    u = W.wttm_weights(v, 0.25).unsqueeze(-1)
    assert torch.allclose(wttm.final_logits, u * ttm.final_logits, atol=1e-14)
    assert torch.allclose(normalised.final_logits, u / u.mean() * ttm.final_logits, atol=1e-14)


def test_flow_bad_input():
    v = _logits(0, 2, 3, 1.0)
    with pytest.raises(ValueError, match="method"):
        th.gradient_flow(v, "dkd", 4.0)
    with pytest.raises(ValueError, match="steps"):
        th.gradient_flow(v, "kd", 4.0, steps=-1)
    with pytest.raises(ValueError, match="record_every"):
        th.gradient_flow(v, "kd", 4.0, record_every=0)
    with pytest.raises(ValueError, match="same shape"):
        th.gradient_flow(v, "kd", 4.0, student_logits=torch.zeros(2, 4, dtype=F64))


def test_probability_velocity_is_the_first_order_change_of_q():
    z, g = _logits(13, 4, 6, 2.0), _logits(14, 4, 6, 1.0)
    vel = th.probability_velocity(z, g)
    eps = 1e-6
    finite = (torch.softmax(z - eps * g, -1) - torch.softmax(z + eps * g, -1)) / (2 * eps)
    assert torch.allclose(vel, finite, atol=1e-8)
    assert torch.allclose(vel.sum(-1), torch.zeros(4, dtype=F64), atol=1e-15)


# --------------------------------------------------------------------------------------------- geometry, curves


def test_simplex_xy_corners_centroid_and_errors():
    assert torch.allclose(th.simplex_xy(torch.eye(3, dtype=F64)), th.SIMPLEX_VERTICES)
    centre = th.simplex_xy(torch.full((3,), 1 / 3, dtype=F64))
    assert torch.allclose(centre, torch.tensor([0.5, math.sqrt(3) / 6], dtype=F64))
    sides = [float(torch.dist(th.SIMPLEX_VERTICES[i], th.SIMPLEX_VERTICES[(i + 1) % 3])) for i in range(3)]
    assert sides == pytest.approx([1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="3 entries"):
        th.simplex_xy(torch.ones(4))
    with pytest.raises(TypeError, match="p must"):
        th.simplex_xy([1.0, 0.0, 0.0])


def test_renyi_curve_limits_monotonicity_and_batches():
    p = torch.softmax(_logits(15, 1, 12, 2.0)[0], -1)
    alphas = torch.logspace(-3, 3, 25, dtype=F64)
    curve = th.renyi_curve(p, alphas)
    assert curve.shape == (25,)
    assert bool((curve[1:] <= curve[:-1] + 1e-12).all())
    assert float(curve[0]) == pytest.approx(math.log(12), abs=0.01)
    assert float(curve[-1]) == pytest.approx(-math.log(float(p.max())), abs=0.01)
    batch = th.renyi_curve(torch.stack([p, p.flip(0)]), alphas)
    assert batch.shape == (2, 25) and torch.allclose(batch[0], curve) and torch.allclose(batch[1], curve)
    with pytest.raises(ValueError, match="alphas"):
        th.renyi_curve(p, [])


def test_pointwise_map_properties_of_fig4():
    assert all(th.pointwise_map_properties(lambda p: p**0.3).values())
    sharpen = th.pointwise_map_properties(lambda p: p**2)
    assert sharpen == {"f(0)=0": True, "f(1)=1": True, "non-decreasing": True, "f(p)>p": False}
    bump = th.pointwise_map_properties(lambda p: 4 * p * (1 - p))
    assert not bump["f(1)=1"] and not bump["non-decreasing"]
    with pytest.raises(ValueError, match="same shape"):
        th.pointwise_map_properties(lambda p: p.sum())


# --------------------------------------------------------------------------------------------- teacher model


def test_sample_teacher_logits_is_seeded_and_cifar_like():
    logits, labels = th.sample_teacher_logits(2000, seed=0)
    again, labels_again = th.sample_teacher_logits(2000, seed=0)
    other, _ = th.sample_teacher_logits(2000, seed=1)
    assert torch.equal(logits, again) and torch.equal(labels, labels_again) and not torch.equal(logits, other)
    assert logits.shape == (2000, 100) and logits.dtype == torch.float32 and labels.dtype == torch.int64
    accuracy = float((logits.argmax(-1) == labels).float().mean())
    assert 0.7 <= accuracy <= 0.9  # measured 0.80 at the defaults
    # superclass structure: the four siblings of the true class outscore the other 95 classes on average
    block = labels // 5
    sibling = (torch.arange(100) // 5).unsqueeze(0) == block.unsqueeze(1)
    sibling &= torch.arange(100).unsqueeze(0) != labels.unsqueeze(1)
    assert float(logits[sibling].mean()) > float(logits[~sibling & (torch.arange(100) != labels[:, None])].mean()) + 2
    weights = W.wttm_weights(logits, 0.25)
    assert float(weights.min()) < 3 and float(weights.max()) > 25  # a realistic spread of smoothness


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n": 0}, ValueError, "n must"),
        ({"n": 4, "num_classes": 10, "num_superclasses": 3}, ValueError, "multiple"),
        ({"n": 4, "confidence": 0.0}, ValueError, "confidence"),
        ({"n": 4, "seed": 1.5}, TypeError, "seed"),
    ],
)
def test_sample_teacher_logits_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        th.sample_teacher_logits(**kwargs)


def test_sample_teacher_logits_chooses_superclasses_of_two_classes_at_least():
    for num_classes, superclasses in ((2, 1), (7, 1), (10, 5), (12, 6), (20, 10)):
        chosen = th.sample_teacher_logits(6, num_classes, num_superclasses=None, seed=4)
        given = th.sample_teacher_logits(6, num_classes, num_superclasses=superclasses, seed=4)
        assert all(torch.equal(a, b) for a, b in zip(chosen, given, strict=True))


# ------------------------------------------------------------------------------------------------ sharpness line


def test_sharpness_profile_minimisers():
    from wttm_core.theory.optimal import sharpness_profile

    logits, labels = th.sample_teacher_logits(16, 10, num_superclasses=5, seed=0)
    v = logits.double()
    i = int((v.argmax(-1) == labels).nonzero()[0])
    scales = torch.logspace(-2, 1, 61, dtype=torch.float64)
    out = sharpness_profile(v[i], int(labels[i]), 4.0, 36.0, scales)
    # KD's best student along the line is sharper than the teacher (s > 1); TTM's is near p^t_T (s close to 1/T)
    assert out["kd_best"] > 1.0 and 0.25 <= out["ttm_best"] < 0.5
    assert out["lam"] == pytest.approx(0.9)
    for name in ("kd", "ttm"):  # curves are offsets from the minimum: never below it, and unimodal on the grid
        curve = out[name]
        assert float(curve.min()) >= -1e-9
        k = int(curve.argmin())
        assert bool((curve[:k].diff() <= 1e-12).all()) and bool((curve[k:].diff() >= -1e-12).all())
    at_one = sharpness_profile(v[i], int(labels[i]), 1.0, 0.5, scales)
    assert at_one["kd_best"] == pytest.approx(at_one["ttm_best"], rel=1e-6)  # T = 1: TTM is KD (Eq. 15)
    with pytest.raises(ValueError, match="beta"):
        sharpness_profile(v[i], int(labels[i]), 4.0, 0.0, scales)


# ------------------------------------------------------------------------------------------------ shared student


def test_shared_student_equal_mean_strength():
    from wttm_core.theory import shared_student as ss

    data = ss.shared_student_data(120, 60, 10, 4, seed=1)
    assert data.train_features.shape == (120, 4) and data.test_teacher.shape == (60, 10)
    gamma = 0.25
    mean_u = float(W.wttm_weights(data.train_teacher, gamma).mean())
    a = ss.train_shared_student(data, "wttm-mean", gamma, steps=40, lr=1.0, record_every=5)
    b = ss.train_shared_student(data, "wttm", gamma, steps=40, lr=1.0 / mean_u, record_every=5)
    # dividing the weights by their mean is the same as dividing the step size by it
    assert torch.allclose(a.train, b.train, rtol=1e-10) and torch.allclose(a.test, b.test, rtol=1e-10)
    assert a.steps.tolist() == [0, 5, 10, 15, 20, 25, 30, 35, 40]
    assert bool((a.train.diff() < 0).all())  # a small step decreases the divergence
    # trained to convergence, TTM reaches the lowest unweighted training divergence: it minimises exactly that
    runs = {
        w: ss.train_shared_student(data, w, gamma, steps=3000, lr=2.0, record_every=3000) for w in ("ttm", "wttm-mean")
    }
    assert float(runs["ttm"].train[-1]) < float(runs["wttm-mean"].train[-1])


def test_shared_student_autograd_step():
    """One step of the closed-form gradient (Eq. 20, weighted) equals autograd on the weighted mean loss."""
    from wttm_core.theory import shared_student as ss

    data = ss.shared_student_data(30, 10, 6, 3, seed=2)
    gamma = 0.5
    run = ss.train_shared_student(data, "wttm", gamma, steps=1, lr=0.7, record_every=1)
    weight = torch.zeros(3, 6, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    z = data.train_features @ weight + bias
    loss = W.wttm_weights(data.train_teacher, gamma) * W.ttm_loss(z, data.train_teacher, gamma, reduction="none")
    loss.mean().backward()
    with torch.no_grad():
        z1 = data.train_features @ (weight - 0.7 * weight.grad) + (bias - 0.7 * bias.grad)
        expected = W.ttm_loss(z1, data.train_teacher, gamma).item()
    assert float(run.train[-1]) == pytest.approx(expected, rel=1e-10)


def test_shared_student_bad_input():
    from wttm_core.theory import shared_student as ss

    data = ss.shared_student_data(10, 5, 4, 2)
    with pytest.raises(ValueError, match="weighting"):
        ss.train_shared_student(data, "dkd", 0.5)
    with pytest.raises(ValueError, match="gamma"):
        ss.train_shared_student(data, "ttm", 0.0)
    with pytest.raises(ValueError, match="feature_dim"):
        ss.shared_student_data(10, 5, 4, 0)
