"""The CUDA-graph training step (``wttm_core.engine.graphs``): when it is used, and that it trains exactly what the
eager step trains. The equivalence tests need a GPU and are skipped without one (the GPU script
``benchmarks/gpu_run.sh`` runs them); the configuration and input checks run everywhere."""

from __future__ import annotations

import math

import pytest
import torch

import wttm_core.functional as WF
from wttm_core.data import load_dataset
from wttm_core.engine import TrainConfig, build_method, resolve_config
from wttm_core.engine.graphs import GraphedStep
from wttm_core.engine.loop import prepare

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")


def test_graphs_are_off_on_the_cpu_and_refused_when_asked_for():
    assert resolve_config(TrainConfig(arch="resnet8", device="cpu")).cuda_graphs is False
    with pytest.raises(ValueError, match=r"cuda_graphs: .*device cpu"):
        resolve_config(TrainConfig(arch="resnet8", device="cpu", cuda_graphs=True))


def test_graphed_step_wants_cuda_tensors_and_a_warmup():
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="warmup"):
        GraphedStep(lambda x, y: x, optimizer, warmup=0)
    with pytest.raises(ValueError, match="batch_size"):
        GraphedStep(lambda x, y: x, optimizer, batch_size=0)
    with pytest.raises(ValueError, match="CUDA tensors"):
        GraphedStep(lambda x, y: x, optimizer)(torch.zeros(2, 3), torch.zeros(2))


def test_value_checks_run_at_the_public_edge_only():
    """The public functions check values; the engine's kernels (the same maths) do not, by design, so a
    captured step never reads back. This replaces the old global ``value_checks(False)`` switch."""
    student, teacher = torch.zeros(2, 5), torch.zeros(2, 5)
    student[0, 0] = math.nan
    with pytest.raises(ValueError, match="student_logits"):
        WF.kd_loss(student, teacher, temperature=4.0)
    assert torch.isnan(WF._kd(student, teacher, 4.0).mean())  # the kernel the engine's kd term calls
    assert torch.isnan(build_method("kd")(student, teacher, torch.zeros(2, dtype=torch.long)).parts["kd"])
    with pytest.raises(ValueError, match="student_logits"):  # the public function still checks
        WF.kd_loss(student, teacher, temperature=4.0)
    not_probabilities = torch.tensor([[0.5, 0.6]])
    with pytest.raises(ValueError, match="sum to 1"):
        WF.shannon_entropy(not_probabilities)
    WF._shannon_from_log(torch.log(not_probabilities))  # kernels check nothing; shapes stay checked at the edge
    with pytest.raises(ValueError, match="dim"):
        WF.shannon_entropy(not_probabilities, dim=2)


def _trainer(teacher_file, cuda_graphs: bool, amp: str, method: str):
    data = load_dataset("synthetic", "train", size=64 * 7 + 16)  # 7 full batches and a partial one per epoch
    test = load_dataset("synthetic", "test", size=128)
    config = TrainConfig(
        arch="resnet8",
        method=method,
        teacher_checkpoint=str(teacher_file),
        gamma=0.3,
        beta=1.5,
        epochs=3,
        milestones=(1, 2),  # the learning rate changes twice: the step is captured three times
        device="cuda",
        amp=amp,
        deterministic=True,
        cuda_graphs=cuda_graphs,
        quiet=True,
    )
    return prepare(config, data=(data, test))


@needs_cuda
@pytest.mark.parametrize(
    ("amp", "method"), [("off", "wttm"), ("bf16", "wttm"), ("bf16", "kd+0.5*renyi"), ("bf16", "ce")]
)
def test_graphed_training_matches_eager_training(teacher_file, amp, method):
    runs = {}
    for graphs in (False, True):
        trainer = _trainer(teacher_file, graphs, amp, method)
        summary = trainer.fit(handle_sigint=False)
        runs[graphs] = (trainer, summary)
    graphed, eager = runs[True][0], runs[False][0]
    assert eager.graphed_step is None
    step = graphed.graphed_step
    assert step is not None and step.captures == 3
    assert step.replays == 3 * 7 - step.warmup  # the warm-up steps are real steps on the first batches
    assert step.eager_steps == step.warmup + 3  # plus each epoch's partial batch
    tolerance = 1e-5 if amp == "off" else 1e-3
    for (name, a), b in zip(graphed.student.state_dict().items(), eager.student.state_dict().values(), strict=True):
        assert torch.allclose(a.double(), b.double(), rtol=tolerance, atol=tolerance), name
    for a, b in zip(runs[True][1]["history"], runs[False][1]["history"], strict=True):
        assert a["lr"] == b["lr"]
        for key in ("train_loss", "train_acc", "test_acc", "weight_mean"):
            if a[key] is not None or b[key] is not None:
                assert math.isclose(a[key], b[key], rel_tol=10 * tolerance, abs_tol=10 * tolerance), key
