"""Statistics a reviewer would accept: paired intervals checked against an independent computation (R's
``t.test`` on its ``sleep`` data), t quantiles against printed tables, Holm against R's ``p.adjust``, sample
sizes against Cohen's / G*Power tables, and no verdict from identical repeats."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from wttm_core.lab.experiments.stats import (
    binomial_se,
    compare,
    compare_many,
    holm,
    paired_t_test,
    power_sentence,
    seeds_needed,
    student_t_quantile,
)

# R: data(sleep); extra hours of sleep of the same 10 patients under two drugs (Student 1908)
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def test_identical_repeats_give_no_verdict() -> None:
    # CPU runs repeat bit for bit when nothing varies: zero spread says nothing about the noise
    for paired in (False, True):
        c = compare([10.0, 10.0], [9.9, 9.9], paired=paired)
        assert c.verdict == "inconclusive" and not c.significant
        assert c.p_value is None and c.ci is None and "no spread" in c.sentence()
    # per-seed differences without spread (both arms vary together) are no evidence either
    same_gap = compare([10.0, 11.0], [9.9, 10.9], paired=True)
    assert same_gap.verdict == "inconclusive"
    assert "no spread" in power_sentence(same_gap)


def test_paired_interval_matches_r_t_test() -> None:
    # t.test(extra ~ group, data = sleep, paired = TRUE):
    # t = -4.0621, df = 9, p-value = 0.002833, 95 percent CI -2.4598858 -0.7001142, mean difference -1.58
    c = compare(SLEEP_1, SLEEP_2, paired=True, label_a="drug 1", label_b="drug 2")
    assert c.difference == pytest.approx(-1.58)
    assert (c.t, c.df, c.p_value) == (pytest.approx(-4.0621, abs=5e-5), 9.0, pytest.approx(0.002833, abs=5e-7))
    assert c.ci == (pytest.approx(-2.4598858, abs=5e-8), pytest.approx(-0.7001142, abs=5e-8))
    assert c.verdict == "drug 2 better" and "paired t" in c.sentence()
    assert paired_t_test(SLEEP_1, SLEEP_2)[2] == pytest.approx(0.002833, abs=5e-7)
    # t.test(extra ~ group, data = sleep) (Welch): t = -1.8608, df = 17.776, p-value = 0.07939,
    # 95 percent CI -3.3654832 0.2054832 - the same data, unpaired, cannot tell the drugs apart
    w = compare(SLEEP_1, SLEEP_2)
    assert (w.t, w.df, w.p_value) == (
        pytest.approx(-1.8608, abs=5e-5),
        pytest.approx(17.776, abs=5e-4),
        pytest.approx(0.07939, abs=5e-6),
    )
    assert w.ci == (pytest.approx(-3.3654832, abs=5e-8), pytest.approx(0.2054832, abs=5e-8))
    assert w.verdict == "within noise"
    with pytest.raises(ValueError, match="one run of each per seed"):
        compare([1.0, 2.0, 3.0], [1.0, 2.0], paired=True)


@pytest.mark.parametrize(
    ("p", "df", "t"),
    [(0.975, 1.0, 12.706204736), (0.975, 2.0, 4.302652730), (0.975, 4.0, 2.776445105), (0.975, 10.0, 2.228138852),
     (0.95, 30.0, 1.697260887), (0.8, 5.0, 0.919543780), (0.025, 4.0, -2.776445105), (0.975, 120.0, 1.979930405)],
)  # fmt: skip
def test_t_quantiles_match_printed_tables(p: float, df: float, t: float) -> None:
    assert student_t_quantile(p, df) == pytest.approx(t, abs=1e-8)
    assert student_t_quantile(p, 1e6) == pytest.approx(NormalDist().inv_cdf(p), abs=1e-5)  # the normal limit


def test_holm_matches_r_p_adjust_and_guards_the_family() -> None:
    # the second-smallest of three p-values is multiplied by 2: b alone is significant, among three it is not
    # p.adjust(c(0.01, 0.02, 0.03, 0.04, 0.05), "holm") = 0.05 0.08 0.09 0.09 0.09
    assert holm([0.01, 0.02, 0.03, 0.04, 0.05]) == pytest.approx([0.05, 0.08, 0.09, 0.09, 0.09])
    assert holm([0.04, 0.001, 0.5]) == pytest.approx([0.08, 0.003, 0.5])  # order as given
    values = {"base": [50.0, 51.0, 52.0], "a": [53.1, 53.9, 55.2], "b": [50.7, 52.0, 53.3], "c": [50.2, 50.5, 52.9]}
    alone = compare(values["b"], values["base"], paired=True)
    both = compare_many(values, [("a", "base"), ("b", "base"), ("c", "base")], paired=True)
    assert alone.p_value < 0.05 and alone.verdict == "A better"
    assert both[1].p_value == alone.p_value and both[1].p_adjusted == pytest.approx(2 * alone.p_value)
    assert both[1].verdict == "within noise" and both[0].verdict == "a better"
    assert "Holm p" in both[1].sentence()
    # its own 95 % interval excludes zero, so the reason names the correction, not the interval
    assert both[1].ci[0] > 0 and "Holm" in both[1].reason and "includes zero" not in both[1].reason
    with pytest.raises(ValueError, match="no values for 'd'"):
        compare_many(values, [("d", "base")])


def test_test_set_sampling_error_enters_the_verdict() -> None:
    assert binomial_se(60.0, 1000) == pytest.approx(100 * math.sqrt(0.6 * 0.4 / 1000))
    assert binomial_se(60.0, 1000) == pytest.approx(1.549, abs=1e-3)
    a, b = [61.0, 61.6, 62.1], [60.0, 60.5, 61.2]  # a steady +1 point over three seeds
    seeds_only = compare(a, b, paired=True, label_a="a", label_b="b")
    judged = compare(a, b, paired=True, test_size=1000, label_a="a", label_b="b")
    assert seeds_only.verdict == "a better"
    assert judged.verdict == "within noise" and "test set" in judged.reason
    assert judged.test_se == pytest.approx(math.hypot(binomial_se(61.5667, 1000), binomial_se(60.5667, 1000)), 1e-4)
    assert compare(a, b, paired=True, test_size=100_000).verdict == "A better"
    with pytest.raises(ValueError, match="test_size"):
        binomial_se(50.0, 0)


def test_seeds_needed_matches_power_tables() -> None:
    # paired t, effect dz = difference / s_d: G*Power gives n = 10 (dz = 1), 15 (0.8), 34 (0.5) at 80 % power
    assert [seeds_needed(1.0, d) for d in (1.0, 0.8, 0.5)] == [10, 15, 34]
    # two samples, Cohen's d = difference / s with s_a = s_b = s: 17, 26, 64 per group (Cohen 1988, Table 2.4.1)
    assert [seeds_needed(math.sqrt(2), d, paired=False) for d in (1.0, 0.8, 0.5)] == [17, 26, 64]
    c = compare([60.0, 61.0, 62.5], [59.0, 60.5, 61.0], paired=True, test_size=1000, label_a="WTTM", label_b="TTM")
    text = power_sentence(c)
    assert f"0.3 points about {seeds_needed(c.diff_std, 0.3)}" in text and "test set" in text
    with pytest.raises(ValueError, match="spread"):
        seeds_needed(0.0, 1.0)
