"""Honest comparisons of a handful of runs: mean +- std, Welch's t-test and a plain-words verdict.

The paper reports CIFAR-100 accuracies as the mean of 3-5 runs +- their standard deviation and finds WTTM ahead
of TTM "always by at most 0.35, about one run-to-run standard deviation". With so few runs a difference has to
be judged against the noise, so every comparison here states

* the two means, their sample standard deviations (``ddof = 1``) and run counts,
* Welch's unequal-variance t statistic, its Welch-Satterthwaite degrees of freedom and two-sided p-value,
* a verdict: ``"within noise"`` unless the difference is *both* larger than the combined standard deviation
  ``sqrt(s_a^2 + s_b^2)`` (the spread of the difference of two single runs) *and* significant at ``alpha``.

No SciPy: the Student-t tail probability is the regularised incomplete beta function ``I_x(df/2, 1/2)`` with
``x = df / (df + t^2)``, evaluated by its continued fraction (modified Lentz method).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "Estimate",
    "Comparison",
    "estimate",
    "welch_t_test",
    "student_t_two_sided_p",
    "regularized_incomplete_beta",
    "compare",
    "format_mean_std",
]


@dataclass(frozen=True)
class Estimate:
    """Mean, sample standard deviation (``None`` for a single value) and count of a set of measurements."""

    mean: float
    std: float | None
    n: int

    def __str__(self) -> str:
        return format_mean_std(self.mean, self.std)


@dataclass(frozen=True)
class Comparison:
    """The comparison of measurements ``a`` (label ``label_a``) against ``b``; ``difference = mean_a - mean_b``."""

    label_a: str
    label_b: str
    a: Estimate
    b: Estimate
    difference: float
    combined_std: float | None
    t: float | None
    df: float | None
    p_value: float | None
    alpha: float
    verdict: str

    @property
    def significant(self) -> bool:
        """Whether the verdict names a winner (the difference exceeds the noise by both criteria)."""
        return self.verdict not in ("within noise", "inconclusive")

    def sentence(self, unit: str = " points") -> str:
        """One line for a notebook, e.g. ``WTTM - KD = +1.20 points (Welch t = 3.10, df = 3.8, p = 0.038): ...``."""
        head = f"{self.label_a} - {self.label_b} = {self.difference:+.2f}{unit}"
        if self.p_value is None:
            return f"{head}: inconclusive (need at least 2 runs of each to estimate the noise)"
        detail = f"Welch t = {self.t:.2f}, df = {self.df:.1f}, p = {self.p_value:.3g}"
        noise = f"combined std {self.combined_std:.2f}"
        return f"{head} ({detail}; {noise}): {self.verdict}"


def format_mean_std(mean: float, std: float | None, digits: int = 2) -> str:
    """``"76.17 +- 0.28"``, or just the mean when there is no spread estimate."""
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} +- {std:.{digits}f}"


def _values(name: str, values: Sequence[float]) -> list[float]:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a sequence of numbers, got {type(values).__name__}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise TypeError(f"{name} must hold numbers, got {type(v).__name__}")
        if not math.isfinite(v):
            raise ValueError(f"{name} must hold finite numbers, got {v}")
        out.append(float(v))
    if not out:
        raise ValueError(f"{name} must not be empty")
    return out


def estimate(values: Sequence[float]) -> Estimate:
    """Mean and sample standard deviation (``ddof = 1``; ``None`` for one value) of ``values``."""
    xs = _values("values", values)
    n = len(xs)
    mean = math.fsum(xs) / n
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else None
    return Estimate(mean, std, n)


def regularized_incomplete_beta(x: float, a: float, b: float) -> float:
    """``I_x(a, b)``, the regularised incomplete beta function, for ``0 <= x <= 1`` and ``a, b > 0``.

    Uses the continued fraction of ``I_x`` where it converges fast (``x < (a + 1) / (a + b + 2)``) and the
    symmetry ``I_x(a, b) = 1 - I_{1-x}(b, a)`` elsewhere; accurate to about 1e-14.
    """
    if not (0.0 <= x <= 1.0):
        raise ValueError(f"x must lie in [0, 1], got {x}")
    if a <= 0 or b <= 0:
        raise ValueError(f"a and b must be > 0, got a={a}, b={b}")
    if x in (0.0, 1.0):
        return x
    log_front = a * math.log(x) + b * math.log1p(-x) - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(x, a, b) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(1.0 - x, b, a) / b


def _beta_continued_fraction(x: float, a: float, b: float, max_terms: int = 500, eps: float = 1e-15) -> float:
    """Continued fraction ``1 / (1 + d_1 / (1 + d_2 / ...))`` of the incomplete beta, by modified Lentz."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, max_terms + 1):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),  # even step d_{2m}
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),  # odd step d_{2m+1}
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < eps:
            return result
    return result


def student_t_two_sided_p(t: float, df: float) -> float:
    """Two-sided tail probability ``P(|T_df| >= |t|)`` of Student's t distribution with ``df > 0``."""
    if df <= 0 or math.isnan(df):
        raise ValueError(f"df must be > 0, got {df}")
    if math.isinf(t):
        return 0.0
    return regularized_incomplete_beta(df / (df + t * t), df / 2.0, 0.5)


def welch_t_test(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """Welch's t-test of equal means: ``(t, df, two-sided p)``; needs at least 2 values in each sample.

    ``t = (mean_a - mean_b) / sqrt(s_a^2/n_a + s_b^2/n_b)`` with Welch-Satterthwaite degrees of freedom. Two
    samples without any spread give ``t = +-inf, p = 0`` when their means differ and ``t = 0, p = 1`` otherwise.
    """
    ea, eb = estimate(a), estimate(b)
    if ea.std is None or eb.std is None:
        raise ValueError("welch_t_test needs at least 2 values in each sample (a and b)")
    va, vb = ea.std**2 / ea.n, eb.std**2 / eb.n
    diff = ea.mean - eb.mean
    if va + vb == 0.0:
        if diff == 0.0:
            return 0.0, float(ea.n + eb.n - 2), 1.0
        return math.copysign(math.inf, diff), float(ea.n + eb.n - 2), 0.0
    t = diff / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (ea.n - 1) + vb**2 / (eb.n - 1))
    return t, df, student_t_two_sided_p(t, df)


def compare(
    a: Sequence[float],
    b: Sequence[float],
    *,
    label_a: str = "A",
    label_b: str = "B",
    alpha: float = 0.05,
) -> Comparison:
    """Compare two sets of runs (e.g. test accuracies over seeds) and say whether the gap is beyond the noise.

    The verdict is ``"<label_a> better"`` / ``"<label_b> better"`` only when ``|mean_a - mean_b|`` exceeds the
    combined standard deviation *and* Welch's test rejects equal means at ``alpha``; ``"within noise"``
    otherwise, and ``"inconclusive"`` when either side has a single run.
    """
    if not (isinstance(alpha, float) and 0.0 < alpha < 1.0):
        raise ValueError(f"alpha must be a float in (0, 1), got {alpha!r}")
    ea, eb = estimate(_values("a", a)), estimate(_values("b", b))
    diff = ea.mean - eb.mean
    if ea.std is None or eb.std is None:
        return Comparison(label_a, label_b, ea, eb, diff, None, None, None, None, alpha, "inconclusive")
    combined = math.sqrt(ea.std**2 + eb.std**2)
    t, df, p = welch_t_test(a, b)
    beyond = abs(diff) > combined and p < alpha
    verdict = (f"{label_a} better" if diff > 0 else f"{label_b} better") if beyond else "within noise"
    return Comparison(label_a, label_b, ea, eb, diff, combined, t, df, p, alpha, verdict)
