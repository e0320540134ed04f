"""Honest comparisons of a handful of runs: paired intervals, test-set noise, Holm's correction and power.

The paper reports CIFAR-100 accuracies as the mean of 3-5 runs +- their standard deviation and finds WTTM ahead
of TTM "always by at most 0.35, about one run-to-run standard deviation". With so few runs a difference has to
be judged against the noise, and there are two kinds of it:

* **run-to-run noise** (the seed: initialisation, data order, augmentation). The engine draws a run's
  initialisation and its data order from the seed alone, so two methods trained with the same seed see the same
  images in the same order from the same starting weights: runs are *paired* by seed, and the per-seed
  differences ``d_i = a_i - b_i`` are the natural unit. The paired t interval ``mean(d) +- t_{n-1} s_d / sqrt(n)``
  removes the part of the noise both methods share. Unpaired samples fall back to Welch's interval.
* **test-set noise**: an accuracy measured on ``N`` test images has the binomial standard error
  ``sqrt(p (1 - p) / N)`` (1.5 points at 1,000 images and 60 %, 1.1 at 2,000); no number of seeds removes it, because
  every seed is scored on the same images. For a difference of two methods it is at most
  ``sqrt(se_a^2 + se_b^2)`` (errors of the two models independent; correlated errors make it smaller).

A comparison states both means, the difference with its ``1 - alpha`` confidence interval, the t statistic, its
degrees of freedom and p-value (Holm-adjusted when several comparisons are made), and a verdict:
``"<label> better"`` only when the interval excludes zero (at the Holm-adjusted level) *and* the difference
exceeds twice the test set's standard error of the difference (when the test size is known); ``"within noise"``
otherwise; ``"inconclusive"`` when the noise cannot be estimated at all - a single run, or repeats without any
spread (CPU runs repeat exactly when nothing varies, so ``[10, 10]`` against ``[9.9, 9.9]`` says nothing).

No SciPy: the Student-t tail probability is the regularised incomplete beta function ``I_x(df/2, 1/2)`` with
``x = df / (df + t^2)``, evaluated by its continued fraction (modified Lentz method); quantiles invert it by
bisection.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

from wttm_core._checks import check_int, check_number

__all__ = [
    "Estimate",
    "Comparison",
    "estimate",
    "welch_t_test",
    "paired_t_test",
    "student_t_two_sided_p",
    "student_t_quantile",
    "regularized_incomplete_beta",
    "binomial_se",
    "holm",
    "compare",
    "compare_many",
    "seeds_needed",
    "power_sentence",
    "format_mean_std",
]

PAPER_GAPS = (0.3, 1.0)  # points: the size of the paper's method-to-method differences on CIFAR-100


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
    """The comparison of measurements ``a`` (label ``label_a``) against ``b``; ``difference = mean_a - mean_b``.

    ``t``/``df``/``p_value`` come from the paired t-test when ``paired`` (per-seed differences) and from Welch's
    test otherwise; ``ci`` is the ``1 - alpha`` interval of this comparison alone (not Holm-adjusted: among several
    comparisons the verdict can say "within noise" while ``ci`` excludes zero, and ``reason`` then says so);
    ``p_adjusted`` is Holm's p-value when the comparison is one of several (else ``p_value``);
    ``test_se`` is the test set's binomial standard error of the difference (an upper bound; ``None`` when the
    test size is unknown); ``diff_std`` is the spread a seed adds to the difference (``s_d`` for paired runs,
    ``sqrt(s_a^2 + s_b^2)`` otherwise).
    """

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
    paired: bool = False
    ci: tuple[float, float] | None = None
    p_adjusted: float | None = None
    test_se: float | None = None
    diff_std: float | None = None
    reason: str = ""

    @property
    def significant(self) -> bool:
        """Whether the verdict names a winner (the difference exceeds the noise by both criteria)."""
        return self.verdict not in ("within noise", "inconclusive")

    def sentence(self, unit: str = " points") -> str:
        """One line for a notebook, e.g. ``WTTM - KD = +1.20 points, 95 % CI [+0.40, +2.00] (paired t = ...)``."""
        head = f"{self.label_a} - {self.label_b} = {self.difference:+.2f}{unit}"
        if self.p_value is None or self.ci is None:
            return f"{head}: inconclusive ({self.reason})"
        level = 100 * (1 - self.alpha)
        interval = f"{level:g} % CI [{self.ci[0]:+.2f}, {self.ci[1]:+.2f}]"
        test = "paired t" if self.paired else "Welch t"
        detail = f"{test} = {self.t:.2f}, df = {self.df:.1f}, p = {self.p_value:.3g}"
        if self.p_adjusted is not None and self.p_adjusted != self.p_value:
            detail += f", Holm p = {self.p_adjusted:.3g}"
        noise = f"; test-set s.e. of the difference <= {self.test_se:.2f}" if self.test_se is not None else ""
        return f"{head}, {interval} ({detail}{noise}): {self.verdict}"


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


def _check_alpha(name: str, alpha: float) -> None:
    check_number(name, alpha, low=0, high=1, low_open=True, high_open=True)


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
    check_number("x", x, low=0, high=1)
    check_number("a", a, low=0, low_open=True)
    check_number("b", b, low=0, low_open=True)
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
    check_number("df", df, low=0, low_open=True)
    if math.isinf(t):
        return 0.0
    x, a, b = df / (df + t * t), df / 2.0, 0.5
    if x < (a + 1.0) / (a + b + 2.0):
        return regularized_incomplete_beta(x, a, b)
    return 1.0 - regularized_incomplete_beta(t * t / (df + t * t), b, a)  # 1 - x without cancellation (large df)


def student_t_quantile(probability: float, df: float) -> float:
    """The ``probability`` quantile of Student's t with ``df`` degrees of freedom (``t_{0.975, 10} = 2.228``).

    Inverts :func:`student_t_two_sided_p` by bisection on ``|t|`` (to about 1e-12 relative), using the symmetry
    ``t_p = -t_{1-p}``.
    """
    _check_alpha("probability", probability)
    check_number("df", df, low=0, low_open=True)
    if probability == 0.5:
        return 0.0
    tail = 2.0 * min(probability, 1.0 - probability)  # two-sided tail mass beyond |t|
    lo, hi = 0.0, 1.0
    while student_t_two_sided_p(hi, df) > tail:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if student_t_two_sided_p(mid, df) > tail:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * hi:
            break
    t = 0.5 * (lo + hi)
    return t if probability > 0.5 else -t


def welch_t_test(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """Welch's t-test of equal means: ``(t, df, two-sided p)``; needs at least 2 values in each sample.

    ``t = (mean_a - mean_b) / sqrt(s_a^2/n_a + s_b^2/n_b)`` with Welch-Satterthwaite degrees of freedom. Two
    samples without any spread give ``t = +-inf, p = 0`` when their means differ and ``t = 0, p = 1`` otherwise
    (the mathematical limit; :func:`compare` gives no verdict in that case, since identical repeats carry no
    information about the noise).
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


def paired_t_test(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """Paired t-test of ``a_i - b_i`` (same seed, same data order): ``(t, df = n - 1, two-sided p)``.

    ``t = mean(d) / (s_d / sqrt(n))``. Needs at least 2 pairs; differences without any spread give
    ``t = +-inf, p = 0`` (or ``t = 0, p = 1`` when they are all zero), as in :func:`welch_t_test`.
    """
    xa, xb = _values("a", a), _values("b", b)
    if len(xa) != len(xb):
        raise ValueError(f"paired samples need equal lengths, got {len(xa)} (a) and {len(xb)} (b)")
    d = estimate([x - y for x, y in zip(xa, xb, strict=True)])
    if d.std is None:
        raise ValueError("paired_t_test needs at least 2 pairs")
    df = float(d.n - 1)
    if d.std == 0.0:
        return (0.0, df, 1.0) if d.mean == 0.0 else (math.copysign(math.inf, d.mean), df, 0.0)
    t = d.mean / (d.std / math.sqrt(d.n))
    return t, df, student_t_two_sided_p(t, df)


def binomial_se(accuracy: float, test_size: int) -> float:
    """Standard error (points) of an accuracy in percent measured on ``test_size`` images: ``sqrt(p (1-p) / N)``."""
    check_int("test_size", test_size, low=1)
    accuracy = check_number("accuracy", accuracy, low=0, high=100)  # a percentage
    p = accuracy / 100.0
    return 100.0 * math.sqrt(p * (1.0 - p) / test_size)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (same order as given): ``max_{j <= i} min(1, (m - j + 1) p_(j))``.

    Rejecting where the adjusted p is below ``alpha`` keeps the chance of any false "better" among the ``m``
    comparisons at most ``alpha`` (family-wise error rate), without assuming the comparisons independent.
    """
    ps = _values("p_values", p_values)
    if any(not 0.0 <= p <= 1.0 for p in ps):
        raise ValueError(f"p_values must lie in [0, 1], got {ps}")
    m = len(ps)
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(sorted(range(m), key=ps.__getitem__)):
        running = max(running, min(1.0, (m - rank) * ps[index]))
        adjusted[index] = running
    return adjusted


def _difference_se(mean_a: float, mean_b: float, test_size: int | None) -> float | None:
    """Upper bound on the test set's binomial standard error of ``mean_a - mean_b`` (independent errors)."""
    if test_size is None:
        return None
    se_a, se_b = (binomial_se(min(max(m, 0.0), 100.0), test_size) for m in (mean_a, mean_b))
    return math.hypot(se_a, se_b)


def _judged(c: Comparison, p: float) -> Comparison:
    """``c`` with ``p_adjusted = p`` and the verdict that follows (see the module docstring)."""
    z = NormalDist().inv_cdf(1.0 - c.alpha / 2.0)  # 1.96 at alpha = 0.05
    if p >= c.alpha:
        excludes_zero = c.ci is not None and (c.ci[0] > 0 or c.ci[1] < 0) and p > (c.p_value or 0.0)
        holm_note = "not after Holm's correction for the comparisons made together; the interval is one comparison's"
        verdict, reason = "within noise", holm_note if excludes_zero else "the interval of the difference includes zero"
    elif c.test_se is not None and abs(c.difference) <= z * c.test_se:
        verdict, reason = "within noise", "beyond the seeds' noise but within the test set's sampling error"
    else:
        verdict, reason = (f"{c.label_a} better" if c.difference > 0 else f"{c.label_b} better"), ""
    return dataclasses.replace(c, p_adjusted=p, verdict=verdict, reason=reason)


def compare(
    a: Sequence[float],
    b: Sequence[float],
    *,
    label_a: str = "A",
    label_b: str = "B",
    alpha: float = 0.05,
    paired: bool = False,
    test_size: int | None = None,
) -> Comparison:
    """Compare two sets of runs (e.g. test accuracies over seeds) and say whether the gap is beyond the noise.

    ``paired=True`` when ``a[i]`` and ``b[i]`` share seed ``i`` (the engine then gives both the same
    initialisation and data order): paired t interval of the per-seed differences; Welch's otherwise.
    ``test_size`` (images in the test set) adds the binomial test-set error to the verdict. The verdict is
    ``"<label> better"`` only when the ``1 - alpha`` interval excludes zero and the difference exceeds
    ``z_{1 - alpha/2}`` test-set standard errors of the difference; ``"within noise"`` otherwise;
    ``"inconclusive"`` when either side has a single run or the runs repeat without any spread.
    """
    _check_alpha("alpha", alpha)
    xa, xb = _values("a", a), _values("b", b)
    if paired and len(xa) != len(xb):
        raise ValueError(f"paired comparisons need one run of each per seed, got {len(xa)} (a) and {len(xb)} (b)")
    ea, eb = estimate(xa), estimate(xb)
    empty = Comparison(
        label_a, label_b, ea, eb, ea.mean - eb.mean, None, None, None, None, alpha, "inconclusive", paired=paired,
        test_se=_difference_se(ea.mean, eb.mean, test_size),
    )  # fmt: skip
    if ea.std is None or eb.std is None:
        return dataclasses.replace(empty, reason="need at least 2 runs of each to estimate the noise")
    combined = math.hypot(ea.std, eb.std)
    spread, se, (t, df, p) = _noise(xa, xb, paired)
    if se == 0.0:
        reason = "the repeats have no spread (identical runs), so the noise cannot be estimated; vary the seeds"
        return dataclasses.replace(empty, combined_std=combined, diff_std=spread, reason=reason)
    half = student_t_quantile(1.0 - alpha / 2.0, df) * se
    ci = (empty.difference - half, empty.difference + half)
    found = dataclasses.replace(empty, combined_std=combined, t=t, df=df, p_value=p, ci=ci, diff_std=spread)
    return _judged(found, p)


def _noise(xa: list[float], xb: list[float], paired: bool) -> tuple[float, float, tuple[float, float, float]]:
    """The spread a seed adds to the difference, its standard error and the ``(t, df, p)`` of the test."""
    if paired:
        spread = estimate([x - y for x, y in zip(xa, xb, strict=True)]).std or 0.0
        return spread, spread / math.sqrt(len(xa)), paired_t_test(xa, xb)
    ea, eb = estimate(xa), estimate(xb)
    sa, sb = ea.std or 0.0, eb.std or 0.0  # both have at least 2 values (checked by the caller)
    return math.hypot(sa, sb), math.sqrt(sa**2 / ea.n + sb**2 / eb.n), welch_t_test(xa, xb)


def compare_many(
    values: dict[str, Sequence[float]],
    pairs: Sequence[tuple[str, str]],
    *,
    alpha: float = 0.05,
    paired: bool = False,
    test_size: int | None = None,
) -> list[Comparison]:
    """:func:`compare` for every ``(label_a, label_b)`` in ``pairs``, verdicts at Holm-adjusted p-values.

    ``values`` maps labels to per-seed measurements (in seed order when ``paired``). Inconclusive comparisons
    take no part in the correction (they have no p-value).
    """
    for label_a, label_b in pairs:
        for label in (label_a, label_b):
            if label not in values:
                raise ValueError(f"pairs: no values for {label!r} (have {list(values)})")
    found = [
        compare(values[x], values[y], label_a=x, label_b=y, alpha=alpha, paired=paired, test_size=test_size)
        for x, y in pairs
    ]
    tested = [i for i, c in enumerate(found) if c.p_value is not None]
    adjusted = holm([found[i].p_value for i in tested]) if tested else []  # type: ignore[misc]
    for i, p in zip(tested, adjusted, strict=True):
        found[i] = _judged(found[i], p)
    return found


def seeds_needed(
    spread: float, difference: float, *, paired: bool = True, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Seeds per method needed to detect ``difference`` with probability ``power`` at level ``alpha``.

    ``spread`` is the standard deviation a seed adds to the difference: ``s_d`` of the per-seed differences for
    paired runs, ``sqrt(s_a^2 + s_b^2)`` otherwise. The smallest ``n >= 2`` with
    ``(t_{1-alpha/2, df} + t_{power, df}) spread / sqrt(n) <= |difference|``, ``df = n - 1`` (paired) or
    ``2 (n - 1)`` (two independent samples): the usual t-based sample-size formula.
    """
    _check_alpha("alpha", alpha)
    _check_alpha("power", power)
    spread = check_number("spread", spread, low=0, low_open=True)
    if check_number("difference", difference) == 0:
        raise ValueError("difference must be non-zero (no number of seeds detects no difference)")
    z = NormalDist().inv_cdf(1.0 - alpha / 2.0) + NormalDist().inv_cdf(power)
    n = max(2, math.floor((z * spread / difference) ** 2))  # the normal approximation is a lower bound
    while True:
        df = float(n - 1 if paired else 2 * (n - 1))
        reach = (student_t_quantile(1.0 - alpha / 2.0, df) + student_t_quantile(power, df)) * spread
        if reach / math.sqrt(n) <= abs(difference):
            return n
        n += 1


def power_sentence(c: Comparison, differences: Sequence[float] = PAPER_GAPS, *, power: float = 0.8) -> str:
    """How many seeds this protocol would need to resolve differences of the paper's size, in words."""
    if c.diff_std is None or c.diff_std == 0.0:
        return (
            f"{c.label_a} - {c.label_b}: the runs show no spread to extrapolate from, so no seed count follows; "
            "runs that differ (more images or epochs) are needed first."
        )
    kind = "paired by seed" if c.paired else "unpaired"
    needs = ", ".join(
        f"{d:g} point{'s' if d != 1 else ''} about {seeds_needed(c.diff_std, d, paired=c.paired, alpha=c.alpha, power=power)}"  # noqa: E501
        for d in differences
    )
    text = (
        f"{c.label_a} - {c.label_b}: a seed moves this difference by {c.diff_std:.2f} points (s.d., {kind}); "
        f"to detect a difference of the paper's size ({power:.0%} power, {c.alpha:g} level) this protocol needs "
        f"seeds per method: {needs}."
    )
    if c.test_se is not None:
        text += (
            f" More seeds do not shrink the test set's own sampling error of the difference "
            f"(up to {c.test_se:.2f} points s.e.): only more test images do."
        )
    return text


def format_mean_std(mean: float, std: float | None, digits: int = 2) -> str:
    """``"76.17 +- 0.28"``, or just the mean when there is no spread estimate."""
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} +- {std:.{digits}f}"
