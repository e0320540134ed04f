"""Experiment orchestration for the notebooks 05-07 and the sweeps (Zheng & Yang, ICLR 2024).

Modules, one job each:

* :mod:`~wttm_core.lab.experiments.stats` - mean +- std, paired t intervals, test-set error, Holm, power;
* :mod:`~wttm_core.lab.experiments.variants` - named variants: the paper's methods, alternative WTTM sample
  weights (Eqs. 22-23) rescaled to the same mean strength, KD + a decoupled Renyi regulariser (Eqs. 4, 15, 19);
* :mod:`~wttm_core.lab.experiments.diagnostics` - per-epoch entropy histograms (Fig. 3) and per-superclass
  divergences written next to the engine's ``metrics.jsonl``;
* :mod:`~wttm_core.lab.experiments.orchestrate` - teachers trained once and cached, variants x seeds through the
  engine, finished runs reused;
* :mod:`~wttm_core.lab.experiments.tables` - best/last accuracy tables next to ``data/paper_results.csv``;
* :mod:`~wttm_core.lab.experiments.students` - notebook 05's workflow (also a command line);
* :mod:`~wttm_core.lab.experiments.questions` - notebook 07's open-question experiments;
* :mod:`~wttm_core.lab.experiments.examples` - the example runs in ``data/example_runs/`` that notebook 06 reads.
"""

from wttm_core.lab.experiments.orchestrate import (
    RunSpec,
    TeacherSource,
    ensure_teacher,
    load_data,
    parse_teacher,
    project_root,
    resolve_path,
    run_variants,
    teacher_logits,
)
from wttm_core.lab.experiments.stats import Comparison, Estimate, compare, estimate, format_mean_std, welch_t_test
from wttm_core.lab.experiments.tables import accuracy_rows, comparisons, markdown_table
from wttm_core.lab.experiments.variants import (
    WEIGHTING_LABELS,
    Variant,
    eq19_renyi_weight,
    kd_renyi_variant,
    method_variant,
    weight_means,
    weighting_variants,
)

__all__ = [
    "WEIGHTING_LABELS",
    "Comparison",
    "Estimate",
    "RunSpec",
    "TeacherSource",
    "Variant",
    "accuracy_rows",
    "compare",
    "comparisons",
    "ensure_teacher",
    "eq19_renyi_weight",
    "estimate",
    "format_mean_std",
    "kd_renyi_variant",
    "load_data",
    "markdown_table",
    "method_variant",
    "parse_teacher",
    "project_root",
    "resolve_path",
    "run_variants",
    "teacher_logits",
    "weight_means",
    "weighting_variants",
    "welch_t_test",
]
