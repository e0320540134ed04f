"""wttm: an interactive lab for transformed teacher matching (TTM) and weighted TTM (WTTM).

The functional core (Zheng & Yang, ICLR 2024) is importable from here; models, data, the training engine and
figure builders live in the sub-packages ``wttm_core.models``, ``wttm_core.data``, ``wttm_core.engine`` and
``wttm_core.viz``.
"""

from wttm_core.functional import (
    kd_grad,
    kd_loss,
    kd_ttm_decomposition,
    log_power_sum,
    log_power_transform,
    power_sum,
    power_sum_from_logits,
    power_transform,
    renyi_entropy,
    renyi_entropy_from_logits,
    shannon_entropy,
    shannon_entropy_from_logits,
    transformed_teacher_log_probs,
    ttm_grad,
    ttm_loss,
    wttm_grad,
    wttm_loss,
    wttm_weights,
)
from wttm_core.losses import KDLoss, TTMLoss, WTTMLoss

__version__ = "0.1.0"

__all__ = [
    "KDLoss",
    "TTMLoss",
    "WTTMLoss",
    "kd_grad",
    "kd_loss",
    "kd_ttm_decomposition",
    "log_power_sum",
    "log_power_transform",
    "power_sum",
    "power_sum_from_logits",
    "power_transform",
    "renyi_entropy",
    "renyi_entropy_from_logits",
    "shannon_entropy",
    "shannon_entropy_from_logits",
    "transformed_teacher_log_probs",
    "ttm_grad",
    "ttm_loss",
    "wttm_grad",
    "wttm_loss",
    "wttm_weights",
]
