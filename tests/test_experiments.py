"""Experiment orchestration: statistics and verdicts, variants (alternative weights, KD + Renyi), diagnostics,
teachers cached and runs reused on a tiny synthetic run, result tables."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from wttm_core import functional as WF
from wttm_core.engine import TrainConfig, build_method
from wttm_core.lab.experiments import (
    WEIGHTING_LABELS,
    Variant,
    compare,
    ensure_teacher,
    eq19_renyi_weight,
    estimate,
    format_mean_std,
    kd_renyi_variant,
    load_data,
    markdown_table,
    method_variant,
    run_variants,
    teacher_logits,
    weight_means,
    weighting_variants,
    welch_t_test,
)
from wttm_core.lab.experiments.diagnostics import entropy_histogram, superclass_breakdown
from wttm_core.lab.experiments.orchestrate import parse_teacher, slug
from wttm_core.lab.experiments.stats import regularized_incomplete_beta, student_t_two_sided_p
from wttm_core.lab.experiments.tables import accuracy_rows, comparisons
from wttm_core.runs import group_runs

# ------------------------------------------------------------------------------------------------ statistics


@pytest.mark.parametrize(
    ("t", "df", "p"),
    [
        (1.0, 1.0, 0.5),  # Cauchy: P(|T| > 1) = 1/2 exactly
        (12.706204736, 1.0, 0.05),  # textbook critical values of the two-sided 5 % test
        (2.228138852, 10.0, 0.05),
        (1.959963985, 1e7, 0.05),  # -> normal distribution
        (0.0, 3.0, 1.0),
    ],
)
def test_student_t_tail_matches_critical_values(t: float, df: float, p: float) -> None:
    assert student_t_two_sided_p(t, df) == pytest.approx(p, rel=1e-6, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.floats(0.001, 0.999), st.floats(0.2, 30), st.floats(0.2, 30))
def test_incomplete_beta_closed_forms_and_symmetry(x: float, a: float, b: float) -> None:
    mirrored = 1 - regularized_incomplete_beta(1 - x, b, a)
    assert regularized_incomplete_beta(x, a, b) == pytest.approx(mirrored, abs=1e-10)
    assert regularized_incomplete_beta(x, a, 1.0) == pytest.approx(x**a, abs=1e-10)
    assert regularized_incomplete_beta(x, 1.0, b) == pytest.approx(1 - (1 - x) ** b, abs=1e-10)


def test_welch_t_test_by_hand() -> None:
    # means 2 and 5.5, variances 1 and 5/3: t = -3.5 / sqrt(1/3 + 5/12), df by Welch-Satterthwaite
    t, df, p = welch_t_test([1, 2, 3], [4, 5, 6, 7])
    va, vb = 1 / 3, (5 / 3) / 4
    assert t == pytest.approx(-3.5 / math.sqrt(va + vb))
    assert df == pytest.approx((va + vb) ** 2 / (va**2 / 2 + vb**2 / 3))
    assert p == pytest.approx(student_t_two_sided_p(t, df)) and 0.005 < p < 0.02
    assert welch_t_test([1, 1], [1, 1]) == (0.0, 2.0, 1.0)
    assert welch_t_test([2, 2], [1, 1])[2] == 0.0
    with pytest.raises(ValueError, match="at least 2"):
        welch_t_test([1.0], [1.0, 2.0])


def test_verdicts_need_both_significance_and_a_gap_beyond_the_noise() -> None:
    clear = compare([80.0, 81.0, 82.0], [70.0, 71.0, 72.0], label_a="WTTM", label_b="KD")
    assert clear.verdict == "WTTM better" and clear.significant and clear.difference == pytest.approx(10.0)
    assert "WTTM - KD = +10.00 points" in clear.sentence()
    worse = compare([70.0, 71.0, 72.0], [80.0, 81.0, 82.0], label_a="A", label_b="B")
    assert worse.verdict == "B better"
    # the paper's WTTM vs TTM gap on resnet32x4 -> resnet8x4 (-0.11 with std 0.27/0.28) is noise
    noise = compare([76.06 - 0.27, 76.06, 76.06 + 0.27], [76.17 - 0.28, 76.17, 76.17 + 0.28])
    assert noise.verdict == "within noise" and not noise.significant
    one = compare([75.0], [74.0, 74.5])
    assert one.verdict == "inconclusive" and one.p_value is None and "inconclusive" in one.sentence()
    with pytest.raises(ValueError, match="alpha"):
        compare([1.0, 2.0], [1.0, 2.0], alpha=1.5)
    with pytest.raises(TypeError, match="a must hold numbers"):
        compare(["x", 1.0], [1.0, 2.0])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="finite"):
        compare([math.nan, 1.0], [1.0, 2.0])


def test_estimate_and_formatting() -> None:
    e = estimate([1.0, 2.0, 3.0])
    assert (e.mean, e.std, e.n) == (2.0, 1.0, 3) and str(e) == "2.00 +- 1.00"
    assert estimate([4.0]).std is None and format_mean_std(76.171, None) == "76.17"
    with pytest.raises(ValueError, match="empty"):
        estimate([])


# ------------------------------------------------------------------------------------------------ variants


def test_variant_validation() -> None:
    assert method_variant("wttm", gamma=0.3, beta=None).config_fields() == {"method": "wttm", "gamma": 0.3}
    with pytest.raises(ValueError, match="method"):
        Variant("x", "distill-harder")
    with pytest.raises(ValueError, match="options: unknown field"):
        Variant("x", "kd", {"epochs": 3})
    with pytest.raises(ValueError, match="label"):
        Variant(" ", "kd")


def test_weighting_variants_share_the_mean_strength() -> None:
    logits = 3.0 * torch.randn(256, 100, generator=torch.Generator().manual_seed(0))
    means = weight_means(logits, 0.25)
    assert means["none"] == 1.0 and means["power-sum-normalised"] == pytest.approx(1.0)
    assert means["power-sum"] == pytest.approx(float(WF.wttm_weights(logits, 0.25).mean()))
    variants = weighting_variants(0.25, 36.0, means)
    assert [v.label for v in variants] == list(WEIGHTING_LABELS.values())
    for variant in variants:
        weighting = variant.options["weighting"]
        assert variant.options["beta"] * means[weighting] == pytest.approx(36.0)
        assert variant.method == "wttm"
    assert {v.method for v in weighting_variants(0.25, 36.0, means, with_ce=False)} == {"wttm-noce"}
    with pytest.raises(ValueError, match="means"):
        weighting_variants(0.25, 36.0, {"power-sum": 2.0}, weightings=("teacher-entropy",))
    with pytest.raises(ValueError, match="unknown scheme"):
        weight_means(logits, 0.25, ["softmax"])


def test_kd_plus_eq19_renyi_is_a_tenth_of_ttm_with_beta_36() -> None:
    """Eqs. 15 and 19: KD - 10.8 H_1/4(q) = 0.1 (CE + 36 D(p^t_T || q)) - 10.8 H(p^t_T), on real engine methods."""
    g = torch.Generator().manual_seed(1)
    student, teacher = 2 * torch.randn(64, 100, generator=g), 4 * torch.randn(64, 100, generator=g)
    labels = torch.randint(0, 100, (64,), generator=g)
    assert eq19_renyi_weight(4.0, 0.9) == pytest.approx(10.8)
    variant = kd_renyi_variant(eq19_renyi_weight(), 0.25)
    method = build_method(variant.method, temperature=4.0, renyi_order=variant.options["renyi_order"])
    ttm = build_method("ttm", gamma=0.25, beta=36.0)
    teacher_entropy = WF.shannon_entropy(torch.softmax(teacher / 4, -1)).mean()
    left = method(student, teacher, labels).total
    right = 0.1 * ttm(student, teacher, labels).total - 10.8 * teacher_entropy
    assert left.item() == pytest.approx(right.item(), rel=1e-5, abs=1e-4)
    assert kd_renyi_variant(0.0, 0.5).method == "kd"
    with pytest.raises(ValueError, match="order"):
        kd_renyi_variant(1.0, 0.0)
    with pytest.raises(ValueError, match="weight"):
        kd_renyi_variant(-1.0, 0.5)


# ------------------------------------------------------------------------------------------------ diagnostics


def test_entropy_histogram_and_superclass_breakdown() -> None:
    g = torch.Generator().manual_seed(2)
    logits = 3 * torch.randn(200, 100, generator=g)
    teacher = 3 * torch.randn(200, 100, generator=g)
    labels = torch.randint(0, 100, (200,), generator=g)
    entropy = WF.shannon_entropy(torch.softmax(logits, -1))
    hist = entropy_histogram(entropy, 100, bins=20)
    assert sum(hist["counts"]) == 200 and len(hist["edges"]) == 21
    assert hist["edges"][0] == 0.0 and hist["edges"][-1] == pytest.approx(math.log(100), rel=1e-4)
    uniform = entropy_histogram(torch.full((5,), math.log(100)), 100, bins=4)
    assert uniform["counts"] == [0, 0, 0, 5]  # H = log K falls in the last bin
    fine_to_coarse = torch.arange(100) // 5
    out = superclass_breakdown(logits, teacher, labels, fine_to_coarse, 0.25)
    assert sum(out["count"]) == 200 and len(out["kl_transformed_teacher"]) == 20
    per_sample = WF.ttm_loss(logits, teacher, 0.25, reduction="none")
    weighted = sum(c * v for c, v in zip(out["count"], out["kl_transformed_teacher"], strict=True)) / 200
    assert weighted == pytest.approx(per_sample.mean().item(), rel=1e-3)
    assert "kl_transformed_teacher" not in superclass_breakdown(logits, None, labels, fine_to_coarse, 0.25)
    with pytest.raises(ValueError, match="num_classes"):
        entropy_histogram(entropy, 1)


# ------------------------------------------------------------------------------------------------ tables


def test_parse_teacher_and_slug(tmp_path: Path) -> None:
    assert parse_teacher("train:resnet20").kind == "train"
    assert parse_teacher("resnet56").kind == "standard"
    assert parse_teacher(str(tmp_path / "t.pth")).kind == "checkpoint"
    with pytest.raises(ValueError, match="unknown architecture"):
        parse_teacher("train:resnet9000")
    with pytest.raises(ValueError, match="teacher must be"):
        parse_teacher("my-favourite-teacher")
    assert slug("KD + 10.8 Renyi(alpha=0.25)") == "kd-10.8-renyi-alpha-0.25"
    with pytest.raises(ValueError, match="label"):
        slug("+++")


def test_paper_numbers_only_at_paper_settings() -> None:
    from wttm_core.lab.experiments.tables import at_paper_settings

    pair = ("resnet56", "resnet20")
    kd = {"method": "kd", "temperature": 4.0, "kd_weight": 0.9, "ce_weight": None, "label_smoothing": 0.0}
    assert at_paper_settings(kd, pair)
    assert not at_paper_settings(kd | {"temperature": 1.0}, pair)  # KD at T = 1 is not the paper's KD
    assert not at_paper_settings(kd | {"ce_weight": 1.0}, pair) and not at_paper_settings(kd | {"method": "kd+ce"})
    assert at_paper_settings({"method": "ce"}) and not at_paper_settings({"method": "ce", "label_smoothing": 0.5})
    ttm = {"method": "ttm", "gamma": 0.3, "beta": 7.0, "weighting": "power-sum"}
    assert at_paper_settings(ttm, pair) and not at_paper_settings(ttm | {"beta": 2.0}, pair)
    wttm = {"method": "wttm", "gamma": 0.3, "beta": 1.5}
    assert at_paper_settings(wttm, pair) and not at_paper_settings(wttm | {"weighting": "teacher-entropy"}, pair)
    assert not at_paper_settings(ttm | {"renyi_order": 0.5}, pair)


def test_markdown_table() -> None:
    text = markdown_table([{"a": 1.234, "b": "x"}, {"a": None}], [("a", "A"), ("b", "B")])
    assert text.splitlines() == ["| A | B |", "|---|---|", "| 1.23 | x |", "|  |  |"]


# ------------------------------------------------------------------------------------------------ orchestration


@pytest.mark.slow
def test_tiny_synthetic_experiment_end_to_end(tmp_path: Path) -> None:
    """Teacher trained once (snapshots kept), 2 variants x 2 seeds, diagnostics written, reuse on re-run."""
    data = load_data("synthetic", 128, 64)
    messages: list[str] = []
    teacher_dir = ensure_teacher(
        "resnet8",
        dataset="synthetic",
        epochs=2,
        data=data,
        root=tmp_path / "teachers",
        snapshot_epochs=[1],
        device="cpu",
        quiet=True,
        log=messages.append,
    )
    assert (teacher_dir / "checkpoint.pth").is_file() and (teacher_dir / "checkpoint_epoch1.pth").is_file()
    assert not (teacher_dir / "state.pth").exists()
    again = ensure_teacher(
        "resnet8",
        dataset="synthetic",
        epochs=2,
        data=data,
        root=tmp_path / "teachers",
        snapshot_epochs=[1],
        device="cpu",
        quiet=True,
        log=messages.append,
    )
    assert again == teacher_dir and "reusing" in messages[-1]

    logits = teacher_logits(teacher_dir / "checkpoint.pth", data[0], device="cpu")
    assert logits.shape == (128, 100) and logits.dtype == torch.float32
    base = TrainConfig(
        arch="resnet8",
        teacher_checkpoint=str(teacher_dir / "checkpoint.pth"),
        dataset="synthetic",
        epochs=2,
        device="cpu",
        quiet=True,
        metric_temperature=4.0,
    )
    variants = [method_variant("kd"), method_variant("ttm", label="TTM g0.25", gamma=0.25, beta=2.0)]
    runs = run_variants(variants, [0, 1], base=base, root=tmp_path / "runs", data=data, log=messages.append)
    assert [r.name for r in runs] == ["kd-s0", "kd-s1", "ttm-g0.25-s0", "ttm-g0.25-s1"]
    for run in runs:
        assert run.finished and run.epochs == [1, 2] and run.config["extra"]["label"] in ("KD", "TTM g0.25")
        assert not any((run.path / name).exists() for name in ("checkpoint.pth", "best.pth", "state.pth"))
        assert [row["epoch"] for row in run.diagnostics] == [1, 2]
        assert sum(run.diagnostic()["entropy_histogram"]["counts"]) == 64
        assert sum(run.diagnostic()["superclass"]["count"]) == 64
        # the diagnostics' mean divergence is the engine's logged one (same model, same test set, same T)
        sc = run.diagnostic()["superclass"]
        mean_kl = sum(c * v for c, v in zip(sc["count"], sc["kl_transformed_teacher"], strict=True)) / 64
        assert mean_kl == pytest.approx(run.last("kl_transformed_teacher"), rel=2e-3)
    assert "teacher_entropy_histogram" in runs[0].diagnostics[0]
    assert not [p.name for p in (tmp_path / "runs").iterdir() if p.name.startswith(".")]  # locks live in build/
    assert runs[2].config["gamma"] == 0.25 and runs[2].config["metric_temperature"] == 4.0

    count = len(messages)
    seen: list[tuple[str, int]] = []
    rerun = run_variants(
        variants,
        [0, 1],
        base=base,
        root=tmp_path / "runs",
        data=data,
        log=messages.append,
        on_epoch=lambda spec, record: seen.append((spec.name, record["epoch"])),
    )
    assert all("reusing" in m for m in messages[count:]) and len(messages) - count == 4
    assert [r.metrics for r in rerun] == [r.metrics for r in runs]
    assert seen == [(run.name, epoch) for run in runs for epoch in (1, 2)]  # reused runs still feed live plots

    groups = group_runs(runs)
    from wttm_core.paper import paper_results_for

    rows = accuracy_rows(groups, paper=paper_results_for("resnet56", "resnet20"))
    assert [row["label"] for row in rows] == ["KD", "TTM g0.25"] and rows[0]["runs"] == 2
    # KD runs at the paper's T = 4 and weight 0.9 get the paper's number; TTM at beta 2 is not the paper's
    # TTM (Table 8: gamma 0.3, beta 7 for resnet56 -> resnet20), so it gets none
    assert rows[0]["paper_accuracy"] == 70.66 and rows[1]["paper_accuracy"] is None
    finals = [r.last("test_acc") for r in groups["KD"]]
    assert rows[0]["last_mean"] == pytest.approx(sum(finals) / 2)
    verdicts = comparisons(groups, "KD")
    assert len(verdicts) == 1 and verdicts[0].label_b == "KD"
    with pytest.raises(ValueError, match="reference"):
        comparisons(groups, "CE")
    json.dumps(rows)  # plain data: goes straight into results.json


# ------------------------------------------------------------------------------------------------ notebook setups


def test_setup_students_resolves_profiles_presets_and_overrides() -> None:
    from wttm_core.lab.experiments.students import setup_students

    quick = setup_students("default")  # `make notebooks` passes "default": notebook 05's cpu-quick
    assert (quick.profile, quick.dataset, quick.student, quick.teacher_arch) == (
        "cpu-quick",
        "synthetic",
        "resnet8",
        "resnet20",
    )
    # issue 14: the teacher's 5,000 images (the shipped teacher fits), students on the first 1,500, 3 epochs
    assert (quick.train_size, quick.test_size, quick.epochs, quick.seeds) == (5000, 1000, 3, [0, 1, 2])
    assert quick.student_train_size == 1500 and quick.time_budget_s == 300 and len(quick.lr_grid) == 3
    # resnet20 -> resnet8 has no Table 8 row: the presets of resnet56 -> resnet20 are borrowed, and said so
    assert quick.hyper == {"ttm": {"gamma": 0.3, "beta": 7.0}, "wttm": {"gamma": 0.3, "beta": 1.5}}
    assert "resnet56 -> resnet20" in quick.hyper_source["ttm"] and quick.paper_pair == ("resnet56", "resnet20")
    assert quick.metric_temperature == pytest.approx(1 / 0.3)
    paper = setup_students("cpu-quick", teacher="train:resnet56", student="resnet20", methods=["ttm"], gamma=0.25)
    assert paper.hyper_source["ttm"] == "Table 8 (reconstructed); gamma given" and paper.hyper["ttm"] == {
        "gamma": 0.25,
        "beta": 7.0,
    }
    given = setup_students("smoke", methods=["wttm", "kd"], gamma={"wttm": 0.5}, beta={"wttm": 2.0})
    assert given.hyper == {"wttm": {"gamma": 0.5, "beta": 2.0}} and given.hyper_source["wttm"] == "given"
    assert "kd" not in given.hyper and (given.train_size, given.seeds) == (256, [0, 1])
    assert "profile **smoke**" in given.describe()
    with pytest.raises(ValueError, match="profile"):
        setup_students("laptop")
    with pytest.raises(ValueError, match="method"):
        setup_students("smoke", methods=["distill-harder"])
    with pytest.raises(ValueError, match="methods"):
        setup_students("smoke", methods="kd")
    with pytest.raises(ValueError, match="student"):
        setup_students("smoke", student="resnet9000")
    with pytest.raises(ValueError, match="gamma"):
        setup_students("smoke", gamma=-1.0)
    quick = setup_students("cpu-quick")
    assert quick.methods[0] == "ce" and quick.tune_lr and quick.pilot["validation_size"] <= quick.train_size // 5
    assert quick.pilot["validation_size"] + quick.pilot["train_size"] <= quick.student_train_size
    assert not setup_students("smoke").tune_lr and setup_students("smoke", lr_grid=[0.2, 0.1]).lr_grid == [0.1, 0.2]
    with pytest.raises(ValueError, match="lr_grid"):
        setup_students("smoke", lr_grid=[0.1, -1.0])


def test_setup_questions_checks_its_protocol() -> None:
    from wttm_core.lab.experiments.questions import setup_questions

    setup = setup_questions("default")
    # question 9 varies the teacher by architecture (each trained to convergence, the same budget), not by snapshots
    assert setup.profile == "cpu-quick" and len(setup.seeds) >= 3
    assert setup.strengths == ["train:resnet8", "train:resnet20"] and setup.label_noise == 0.3
    assert (setup.strength_epochs, setup.strength_train_size) == (60, 1000)
    assert "each trained 60 epochs (to convergence) on 1000 images" in setup.describe()
    assert (setup.gamma, setup.wttm_beta, setup.noce_gamma) == (0.3, 1.5, 0.6)
    assert "Renyi" in setup.describe()
    with pytest.raises(ValueError, match="seeds"):
        setup_questions("smoke", seeds=[0])
    with pytest.raises(ValueError, match="strengths"):
        setup_questions("smoke", strengths=[2])
    with pytest.raises(ValueError, match="epoch numbers need a trained teacher"):
        setup_questions("smoke", teacher="resnet56")
    with pytest.raises(ValueError, match="unknown parameter"):
        setup_questions("smoke", temperature=3)
    with pytest.raises(ValueError, match="label_noise"):
        setup_questions("smoke", label_noise=1.5)
    with pytest.raises(ValueError, match="strength_epochs"):
        setup_questions("smoke", strength_epochs=0)
    with pytest.raises(ValueError, match="strength_train_size"):
        setup_questions("smoke", strength_train_size=2.5)
    with pytest.raises(ValueError, match="teacher"):
        setup_questions("smoke", strengths=["train:nonsense", "train:resnet8"])
    assert setup_questions("smoke", strengths=["train:resnet20"]).strengths == ["train:resnet20", "train:resnet8"]


def test_comparison_with_the_reference_flags_a_different_setup() -> None:
    """A run whose setup differs from the reference's (here: 2 epochs against a budget-cut 1) is flagged."""
    from wttm_core.lab.experiments.questions import (
        QuestionResult,
        compare_with_reference,
        reference_path,
        setup_differences,
        setup_questions,
    )
    from wttm_core.lab.experiments.stats import compare

    verdict = compare([10.0, 12.0, 11.0], [9.0, 11.5, 10.0], label_a="KD", label_b="CE", paired=True, test_size=1000)
    result = QuestionResult("Q8: test", {}, {}, [verdict])
    setup = setup_questions("cpu-quick")
    assert setup.epochs == 2
    reference = {
        "setup": setup.describe().replace("2 epoch(s)", "1 epoch(s)", 1),
        "comparisons": [
            {"question": "Q8", "comparison": "KD - CE", "difference": 1.0, "ci": [-1.0, 3.0], "verdict": "within noise"}
        ],  # fmt: skip
    }
    differences = setup_differences(setup, reference)
    assert len(differences) == 1 and "2 epoch(s)" in differences[0] and "1 epoch(s)" in differences[0]
    rows = compare_with_reference([result], reference, setup)
    assert [row["setup"] for row in rows] == ["DIFFERS: not the same experiment"]
    assert rows[0]["reference"] == "+1.00 [-1.00, +3.00]"
    same = compare_with_reference([result], reference, reference["setup"])
    assert same[0]["setup"] == "same" and setup_differences(reference["setup"], reference) == []
    assert "setup" not in compare_with_reference([result], reference)[0]  # no setup given: no column
    assert setup_differences(setup, {"comparisons": []}) == []  # a reference without a setup: nothing to flag
    extra = setup_differences(setup.describe() + "\n- one more line", reference)
    assert extra[-1] == "here: one more line | reference: (none)"
    # the shipped reference records its setup, so the notebook can flag a different one
    shipped = json.loads(reference_path("cpu-quick").read_text())
    assert isinstance(shipped["setup"], str) and "epoch(s)" in shipped["setup"]


def test_teacher_knowledge_measures_accuracy_superclasses_and_families(teacher_file: Path) -> None:
    """Question 9's teachers compared on more than accuracy, each number against an independent computation."""
    from types import SimpleNamespace

    from wttm_core.data import superclass_family
    from wttm_core.lab.experiments.questions import teacher_knowledge

    test = load_data("synthetic", 64, 64)[1]
    ctx = SimpleNamespace(
        data=(None, test), teacher_checkpoints={"a": str(teacher_file)}, setup=SimpleNamespace(device="cpu")
    )
    known = teacher_knowledge(ctx)["a"]
    probs = torch.softmax(teacher_logits(teacher_file, test, device="cpu"), dim=1).double()
    labels, coarse = test.labels, test.fine_to_coarse
    assert known["accuracy"] == pytest.approx(100 * (probs.argmax(1) == labels).double().mean().item())
    supers = torch.stack([probs[:, coarse == s].sum(1) for s in range(20)], dim=1)
    assert known["superclass accuracy"] == pytest.approx(
        100 * (supers.argmax(1) == coarse[labels]).double().mean().item()
    )
    family, true = superclass_family(), coarse[labels]
    same = (family[None, :] == family[true][:, None]) & (torch.arange(20)[None, :] != true[:, None])
    other = supers.sum(1) - supers[torch.arange(64), true]
    assert known["mass in family"] == pytest.approx(100 * ((supers * same).sum() / other.sum()).item(), rel=1e-6)
    assert 0 < known["chance"] < 100


def test_load_examples_splits_runs_by_the_manifest(tmp_path: Path) -> None:
    from wttm_core.lab.experiments.examples import example_variants, load_examples

    for label, name in (("KD (T=4)", "kd-s0"), ("CE", "ce-s0")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps({"method": "kd", "extra": {"label": label}}))
        (tmp_path / name / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "test_acc": 1.0}) + "\n")
    manifest, figures = load_examples(tmp_path, make_if_missing=False)
    assert [r.label for r in figures["fig1"]] == ["CE", "KD (T=4)"] and "runs_dir" in manifest
    (tmp_path / "manifest.json").write_text(json.dumps({"figures": {"fig1": ["KD (T=4)"], "fig3": ["CE", "KD (T=4)"]}}))
    manifest, figures = load_examples(tmp_path, make_if_missing=False)
    assert [r.label for r in figures["fig1"]] == ["KD (T=4)"] and len(figures["fig3"]) == 2
    with pytest.raises(FileNotFoundError, match="no runs"):
        load_examples(tmp_path / "empty", make_if_missing=False)
    variants = example_variants(4.0)
    # Fig. 3 reuses Fig. 1's KD run (listed first there now, so that it keeps KD's colour in both figures)
    assert variants["fig1"][2].options["beta"] == pytest.approx(9.0) and variants["fig3"][2] is variants["fig1"][0]
    assert variants["step"][0] is variants["fig1"][0] and variants["step"][3] is variants["fig1"][1]
    assert variants["step"][1].options["lr"] == pytest.approx(0.5) and variants["step"][2].options["lr"] == 0.5
    assert variants["fig2"][1].method == "wttm-noce" and variants["fig2"][0].options["ce_weight"] == 0.0


def test_diagnostics_reuse_the_engines_test_logits(tmp_path: Path, teacher_file: Path, monkeypatch) -> None:
    """One pass over the test set per epoch (the engine's), one for the teacher - not two of each."""
    import wttm_core.engine.metrics as metrics
    import wttm_core.engine.shared as shared
    from wttm_core.data import load_dataset
    from wttm_core.engine import prepare
    from wttm_core.lab.experiments.diagnostics import DiagnosticsRecorder

    passes: list[str] = []
    original = metrics.predict_logits

    def counting(model, *args, **kwargs):
        passes.append(type(model).__name__)
        return original(model, *args, **kwargs)

    monkeypatch.setattr(shared, "predict_logits", counting)
    monkeypatch.setattr(metrics, "predict_logits", counting)
    data = load_dataset("synthetic", "train", size=128), load_dataset("synthetic", "test", size=64)
    config = TrainConfig(
        arch="resnet8",
        method="wttm",
        gamma=0.3,
        beta=1.5,
        teacher_checkpoint=str(teacher_file),
        epochs=2,
        device="cpu",
        quiet=True,
        out=str(tmp_path / "run"),
    )
    trainer = prepare(config, data=data)
    recorder = DiagnosticsRecorder(trainer)
    trainer.fit(callbacks=[recorder])
    assert len(passes) == 3  # the teacher once, the student once per epoch
    student_logits, labels = trainer.last_test_logits()
    row = recorder.rows[-1]
    assert sum(row["superclass"]["count"]) == labels.numel() == 64
    assert student_logits.shape == (64, 100) and [r["epoch"] for r in recorder.rows] == [1, 2]
