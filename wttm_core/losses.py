"""``nn.Module`` wrappers of the distillation terms, for training loops.

Each module holds its hyperparameter and calls the matching function of :mod:`wttm_core.functional`;
``forward(student_logits, teacher_logits)`` follows ``torch.nn`` loss conventions (student first).

Example::

    criterion = WTTMLoss(gamma=0.1)                       # T = 10
    loss = F.cross_entropy(z, y) + 4.0 * criterion(z, v)  # Eq. 23 with beta = 4
"""

from __future__ import annotations

from torch import Tensor, nn

from wttm_core import functional as WF
from wttm_core._checks import check_reduction, check_scalar

__all__ = ["KDLoss", "TTMLoss", "WTTMLoss"]


class KDLoss(nn.Module):
    """``T^2 D(p^t_T || q_T)`` (Eq. 1's distillation term); see :func:`wttm_core.functional.kd_loss`."""

    def __init__(self, temperature: float = 4.0, reduction: str = "mean") -> None:
        super().__init__()
        self.temperature = check_scalar("temperature", temperature)
        self.reduction = check_reduction(reduction)

    def forward(self, student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
        return WF.kd_loss(student_logits, teacher_logits, self.temperature, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, reduction={self.reduction!r}"


class TTMLoss(nn.Module):
    """``D(p^t_T || q)`` with ``T = 1 / gamma`` (Eq. 2); see :func:`wttm_core.functional.ttm_loss`."""

    def __init__(self, gamma: float, reduction: str = "mean") -> None:
        super().__init__()
        self.gamma = check_scalar("gamma", gamma)
        self.reduction = check_reduction(reduction)

    def forward(self, student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
        return WF.ttm_loss(student_logits, teacher_logits, self.gamma, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, reduction={self.reduction!r}"


class WTTMLoss(TTMLoss):
    """``U_gamma(p^t) D(p^t_T || q)`` (Eq. 23); see :func:`wttm_core.functional.wttm_loss`."""

    def forward(self, student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
        return WF.wttm_loss(student_logits, teacher_logits, self.gamma, reduction=self.reduction)
