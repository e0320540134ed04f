"""The table of loss terms: one source for the engine, the configuration, the CLI and the README."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from wttm_core.engine import TrainConfig, build_method, parse_method
from wttm_core.engine.config import METHOD_FIELDS, method_for
from wttm_core.loss_terms import (
    BASE_METHODS,
    PRESET_METHODS,
    TERMS,
    HyperParameter,
    LossTerm,
    linear_warmup,
    methods_markdown,
)

README = Path(__file__).resolve().parent.parent / "README.md"
HP = {"gamma": 0.25, "beta": 2.0}


def logits_pair(n: int = 8, k: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z, v = 3 * torch.randn(n, k, generator=g), 5 * torch.randn(n, k, generator=g)
    return z, v, torch.randint(0, k, (n,), generator=g)


def test_readme_method_list_is_generated_from_the_table():
    text = README.read_text()
    block = re.search(r"<!-- methods: [^>]*-->\n(.*?)\n<!-- /methods -->", text, re.S)
    assert block is not None, "README.md lost its generated method list"
    assert block.group(1) == methods_markdown(), "README method list is stale: paste methods_markdown()"
    for name in TERMS:
        assert f"| `{name}`" in block.group(1)


def test_every_hyperparameter_has_a_source_and_a_valid_default():
    for term in TERMS.values():
        for p in term.params:
            assert p.source and p.help, (term.name, p.name)
            if p.default is not None:
                p.check(p.name, p.default)
            else:
                assert p.required or p.field is not None, (term.name, p.name)
        if isinstance(term.weight, str):
            assert term.weight in {p.name for p in term.params}, term.name
    assert set(PRESET_METHODS) == {"ttm", "wttm", "wttm-noce"}
    assert {"ce", "kd", "ttm", "wttm", "wttm-noce"} <= set(BASE_METHODS) and "renyi" not in BASE_METHODS


@pytest.mark.parametrize("name", list(TERMS))
def test_every_term_builds_alone_and_added(name):
    z, v, y = logits_pair()
    spec = name if TERMS[name].base else f"kd+0.5*{name}"
    method = build_method(spec, **HP)
    out = method(z, v, y)
    assert torch.isfinite(out.total) and torch.allclose(out.total, sum(out.parts.values()))
    if TERMS[name].addable:
        added = build_method(f"ce+0.5*{name}", **HP)(z, v, y)
        assert TERMS[name].part_name in added.parts and "ce" in added.parts


def test_config_fields_reach_every_term():
    assert set(METHOD_FIELDS) == {
        "ce_weight",
        "label_smoothing",
        "temperature",
        "kd_weight",
        "gamma",
        "beta",
        "weighting",
        "renyi_order",
    }
    cfg = TrainConfig(method="kd+renyi", temperature=2.0, kd_weight=0.5, ce_weight=0.3, renyi_order=0.7)
    hp = method_for(cfg).hyperparameters()
    assert hp["kd"]["temperature"] == 2.0 and hp["renyi"]["order"] == 0.7 and hp["ce"]["label_smoothing"] == 0.0
    assert method_for(cfg).terms == {"ce": 0.3, "kd": 0.5, "renyi": 1.0}


def test_options_in_the_method_string():
    spec = parse_method("wttm + 0.5*kd(temperature=2, kd_weight=1e+0)")
    assert spec.extras == ((0.5, "kd"),) and dict(spec.options)["kd"] == (("temperature", 2.0), ("kd_weight", 1.0))
    method = build_method("wttm+0.5*kd(temperature=2)", gamma=0.2, beta=3.0, temperature=4.0)
    assert method.hyperparameters()["kd"]["temperature"] == 2.0  # the string wins over the field
    z, v, y = logits_pair()
    from wttm_core.functional import kd_loss

    assert torch.allclose(method(z, v, y).parts["kd"], 0.5 * kd_loss(z, v, 2.0))
    for bad, message in (
        ("kd(tau=2)", "no option 'tau'"),
        ("kd(temperature=-2)", "temperature"),
        ("kd(temperature)", "KEY=VALUE"),
        ("wttm+-1*kd", "cannot parse"),
    ):
        with pytest.raises(ValueError, match=message):
            build_method(bad, **HP)


def test_the_engine_terms_read_nothing_back(monkeypatch):
    """A training step must not wait for the device: no term may turn a tensor into a Python value."""
    z, v, y = logits_pair()
    z.requires_grad_()
    methods = [build_method(name if TERMS[name].base else f"kd+{name}", **HP) for name in TERMS]

    def refuse(*args, **kwargs):
        raise AssertionError("a loss term read a tensor value back to the host")

    for name in ("item", "tolist", "__bool__", "__float__", "__int__"):
        monkeypatch.setattr(torch.Tensor, name, refuse)
    for method in methods:
        method(z, v, y).total.backward()


def test_a_term_with_a_schedule_follows_the_epoch(monkeypatch):
    """The generic mechanism: a term that declares a schedule is scaled by it; the engine sets the epoch."""
    warmup = HyperParameter("warmup", 4.0, "this test", "warm-up epochs", None)
    term = LossTerm(
        "warm-kd", TERMS["kd"].function, "T^2 D(p^t_T || q_T)", "this test", (TERMS["kd"].param("temperature"), warmup),
        schedule=linear_warmup,
    )  # fmt: skip
    monkeypatch.setitem(TERMS, "warm-kd", term)
    z, v, y = logits_pair()
    method = build_method("ce+warm-kd(warmup=4)")
    plain = build_method("ce+kd")(z, v, y).parts["kd"]
    for epoch, factor in ((0, 0.25), (1, 0.5), (3, 1.0), (50, 1.0)):
        method.set_epoch(epoch)
        assert method.factors == {"warm-kd": factor}
        torch.testing.assert_close(method(z, v, y).parts["warm-kd"], factor * plain)
    with pytest.raises(ValueError, match="epoch"):
        method.set_epoch(-1)
    assert build_method("ce+kd").factors == {}  # terms without a schedule: constant weight


def test_the_training_loop_sets_the_epoch(monkeypatch, tmp_path):
    from wttm_core.data import load_dataset
    from wttm_core.engine import train
    from wttm_core.engine.methods import Method

    seen: list[int] = []
    original = Method.set_epoch
    monkeypatch.setattr(Method, "set_epoch", lambda self, epoch: (seen.append(epoch), original(self, epoch))[1])
    data = load_dataset("synthetic", "train", size=32), load_dataset("synthetic", "test", size=16)
    out = tmp_path / "run"
    train(TrainConfig(arch="resnet8", epochs=2, batch_size=16, device="cpu", quiet=True, out=str(out)), data=data)
    assert seen[-2:] == [0, 1]
    recorded = json.loads((out / "config.json").read_text())["term_hyperparameters"]
    assert recorded == {"ce": {"ce_weight": 1.0, "label_smoothing": 0.0}}  # every value the run used


def test_notebook_methods_parameter_takes_every_base_method_and_sums(tmp_path):
    from wttm_core.lab.experiments.students import setup_students

    methods = [*BASE_METHODS, "wttm+0.5*dkd(beta=6)", "kd+lskd"]
    setup = setup_students("smoke", methods=methods, out_dir=str(tmp_path))
    assert setup.methods == methods
    assert set(setup.hyper) == {name for name in methods if parse_method(name).base in PRESET_METHODS}
    with pytest.raises(ValueError, match="method"):
        setup_students("smoke", methods=["kd", "xkd"], out_dir=str(tmp_path))
