"""``nn.Module`` wrappers of the distillation terms, for training loops.

Each module holds its hyperparameter and calls the matching function of :mod:`wttm_core.functional`;
``forward(student_logits, teacher_logits)`` follows ``torch.nn`` loss conventions (student first).

Example::

    criterion = WTTMLoss(gamma=0.1)                       # T = 10
    loss = F.cross_entropy(z, y) + 4.0 * criterion(z, v)  # Eq. 23 with beta = 4
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from wttm_core import functional as WF
from wttm_core._checks import check_reduction, check_scalar

__all__ = ["KDLoss", "TTMLoss", "WTTMLoss"]


class _DistillationLoss(nn.Module):
    """A distillation term of :mod:`wttm_core.functional` (``loss``) with its one positive hyper-parameter, stored
    under the name ``parameter``, and a ``reduction``."""

    parameter: str
    loss: Callable[..., Tensor]

    def __init__(self, value: float, reduction: str) -> None:
        super().__init__()
        setattr(self, self.parameter, check_scalar(self.parameter, value))
        self.reduction = check_reduction(reduction)

    def forward(self, student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
        return self.loss(student_logits, teacher_logits, getattr(self, self.parameter), reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"{self.parameter}={getattr(self, self.parameter)}, reduction={self.reduction!r}"


class KDLoss(_DistillationLoss):
    """``T^2 D(p^t_T || q_T)`` (Eq. 1's distillation term); see :func:`wttm_core.functional.kd_loss`."""

    parameter = "temperature"
    loss = staticmethod(WF.kd_loss)

    def __init__(self, temperature: float = 4.0, reduction: str = "mean") -> None:
        super().__init__(temperature, reduction)


class TTMLoss(_DistillationLoss):
    """``D(p^t_T || q)`` with ``T = 1 / gamma`` (Eq. 2); see :func:`wttm_core.functional.ttm_loss`."""

    parameter = "gamma"
    loss = staticmethod(WF.ttm_loss)

    def __init__(self, gamma: float, reduction: str = "mean") -> None:
        super().__init__(gamma, reduction)


class WTTMLoss(TTMLoss):
    """``U_gamma(p^t) D(p^t_T || q)`` (Eq. 23); see :func:`wttm_core.functional.wttm_loss`."""

    loss = staticmethod(WF.wttm_loss)
