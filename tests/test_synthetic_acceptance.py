"""Measured acceptance of the synthetic data set as a distillation teaching device (slow: trains on the CPU).

The issue's criteria, at the default difficulty and similarity: a resnet20 trained 3 epochs on 10,000 synthetic
images is far above chance (1%), at least 60% of its test errors stay inside the true superclass and its
superclass-level mistakes favour the true superclass's family (issue 16: graded similarity); a bigger network
(resnet32x4) trained on the same budget is measurably better than resnet8, so a teacher has something to transfer.
The training code is ``benchmarks/synthetic_acceptance.py`` (which also prints the measured numbers).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "synthetic_acceptance.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("synthetic_acceptance", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_resnet20_learns_and_its_errors_stay_in_the_superclass(bench: ModuleType) -> None:
    result = bench.train_and_evaluate("resnet20", epochs=3, train_size=10_000, test_size=2_000, device="cpu")
    print(result)
    assert result["accuracy"] >= 0.30  # chance is 0.01
    assert result["superclass_accuracy"] >= 0.90  # chance is 0.05
    assert result["errors_in_superclass"] >= 0.60
    assert result["sibling_share_of_wrong_mass"] >= 0.60  # soft labels favour the siblings (chance: 4/99)
    # graded similarity (the default): superclass-level mistakes and doubts favour the true superclass's family
    assert result["superclass_errors_in_family"] >= 2 * result["superclass_errors_in_family_chance"]
    assert result["other_superclass_mass_in_family"] >= 2 * result["other_superclass_mass_in_family_chance"]


@pytest.mark.skipif(
    os.environ.get("WTTM_FULL_ACCEPTANCE") != "1",
    reason="resnet32x4 for 3 epochs takes tens of minutes on a 2-core CPU; run `make acceptance` "
    "(WTTM_FULL_ACCEPTANCE=1). Measured: resnet32x4 77.0% vs resnet8 37.3% (benchmarks/RESULTS.md)",
)
def test_bigger_network_beats_resnet8_on_the_same_budget(bench: ModuleType) -> None:
    # resnet32x4, not resnet56: on this budget resnet56 sits in the middle of its jump from ~35% to ~80%, so
    # its 3-epoch accuracy depends on the seed (measured 49.8% and 33.8% for seeds 0 and 1 against resnet8's
    # 37%), while resnet32x4 is clearly ahead (77%).
    common = dict(epochs=3, train_size=10_000, test_size=2_000, device="cpu")
    small = bench.train_and_evaluate("resnet8", **common)
    big = bench.train_and_evaluate("resnet32x4", **common)
    print(small, big, sep="\n")
    assert big["accuracy"] >= small["accuracy"] + 0.10
    assert big["errors_in_superclass"] >= 0.60
