"""The training engine shared by the command line and the notebooks.

``train(TrainConfig(...), callbacks=[...])`` trains a teacher (method ``ce``) or distils a student with KD,
TTM, WTTM (Zheng & Yang, ICLR 2024, Eqs. 1, 2, 23) or a weighted sum of them, following the paper's recipe,
and writes ``config.json``, ``metrics.jsonl``, ``summary.json``, checkpoints and a resumable state to
``config.out``; ``train_cohort([...])`` trains several students of one teacher together (the teacher runs once
per batch for all of them). Modules: ``config`` (the typed configuration), ``methods`` (loss terms), ``loop``
(the loop itself), ``student`` (one student's model, step and evaluation), ``shared`` (data and teacher),
``cohort`` (which students can share, memory), ``metrics``, ``persistence`` (run directories, resume),
``state`` (atomic files, random generators), ``speed`` (loaders, CUDA graphs, compile, DDP), ``graphs``,
``distributed`` (torchrun / DDP), ``runtime`` (device, precision) and ``evaluate`` (a checkpoint's accuracy).
"""

from wttm_core.engine.cohort import CohortTooLarge
from wttm_core.engine.config import TrainConfig, config_to_dict, resolve_config
from wttm_core.engine.evaluate import evaluate_model
from wttm_core.engine.loop import (
    TrainingDiverged,
    TrainingInterrupted,
    prepare,
    prepare_cohort,
    train,
    train_cohort,
)
from wttm_core.engine.methods import BASE_METHODS, LossParts, Method, build_method, parse_method
from wttm_core.engine.state import RunDirectoryError, read_jsonl

__all__ = [
    "BASE_METHODS",
    "CohortTooLarge",
    "LossParts",
    "Method",
    "RunDirectoryError",
    "TrainConfig",
    "TrainingDiverged",
    "TrainingInterrupted",
    "build_method",
    "config_to_dict",
    "evaluate_model",
    "parse_method",
    "prepare",
    "prepare_cohort",
    "read_jsonl",
    "resolve_config",
    "train",
    "train_cohort",
]
