"""The training engine shared by the command line and the notebooks.

``train(TrainConfig(...), callbacks=[...])`` trains a teacher (method ``ce``) or distils a student with KD,
TTM, WTTM (Zheng & Yang, ICLR 2024, Eqs. 1, 2, 23) or a weighted sum of them, following the paper's recipe,
and writes ``config.json``, ``metrics.jsonl``, ``summary.json``, checkpoints and a resumable state to
``config.out``. Modules: ``config`` (the typed configuration), ``methods`` (loss terms), ``metrics``,
``state`` (atomic files, random generators, resume), ``distributed`` (torchrun / DDP), ``runtime`` (device,
precision), ``loop`` (the loop itself) and ``evaluate`` (test-set accuracy of a checkpoint).
"""

from wttm_core.engine.config import TrainConfig, config_from_dict, config_to_dict, resolve_config
from wttm_core.engine.evaluate import evaluate_model
from wttm_core.engine.loop import TrainingDiverged, TrainingInterrupted, load_run, prepare, train
from wttm_core.engine.methods import BASE_METHODS, LossParts, Method, build_method, parse_method
from wttm_core.engine.state import RunDirectoryError, read_jsonl

__all__ = [
    "BASE_METHODS",
    "LossParts",
    "Method",
    "RunDirectoryError",
    "TrainConfig",
    "TrainingDiverged",
    "TrainingInterrupted",
    "build_method",
    "config_from_dict",
    "config_to_dict",
    "evaluate_model",
    "load_run",
    "parse_method",
    "prepare",
    "read_jsonl",
    "resolve_config",
    "train",
]
