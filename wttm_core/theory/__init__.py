"""Theory helpers for the notebooks, built on :mod:`wttm_core.functional`.

Everything here is pure maths on tensors (float64 unless said otherwise) and cites the equations of Zheng & Yang,
"Knowledge Distillation Based on Transformed Teacher Matching" (ICLR 2024). One module per job; every name is
importable from ``wttm_core.theory`` itself:

- :mod:`~wttm_core.theory.identity`: the step-by-step derivation of the KD/TTM identity (Eqs. 11-15), the
  lambda <-> beta correspondence of Eq. 19 and the full per-sample KD (Eq. 1) and TTM (Eq. 2) objectives;
- :mod:`~wttm_core.theory.optimal`: the per-sample optimal students of CE + beta TTM (closed form) and of KD
  (Newton's method), and the objectives along a line of student sharpness;
- :mod:`~wttm_core.theory.flows`: toy gradient flows of free student logits under KD, TTM and WTTM (Eqs. 20-21, 23);
- :mod:`~wttm_core.theory.shared_student`: a linear student on fixed features (shared parameters) trained with
  TTM and with WTTM's weights at equal mean strength (question 6);
- :mod:`~wttm_core.theory.geometry`: the probability-simplex geometry of the 3-class view, Renyi curves (Eq. 4),
  point-wise maps (Fig. 4);
- :mod:`~wttm_core.theory.teacher_model`: a seeded generative model of CIFAR-like teacher logits.

Notation: teacher logits ``v``, student logits ``z``, ``p^t = softmax(v)``, ``q = softmax(z)``, temperature ``T``,
``gamma = 1 / T``, ``p^t_T = softmax(v / T)``, ``q_T = softmax(z / T)``.
"""

from wttm_core.theory.flows import FLOW_METHODS, FlowResult, gradient_flow, probability_velocity
from wttm_core.theory.geometry import SIMPLEX_VERTICES, pointwise_map_properties, renyi_curve, simplex_xy
from wttm_core.theory.identity import (
    DerivationStep,
    beta_from_lambda,
    decomposition_over_temperature,
    derivation_steps,
    eq15_terms,
    kd_objective,
    lambda_from_beta,
    ttm_objective,
)
from wttm_core.theory.optimal import optimal_student_kd, optimal_student_ttm, sharpness_profile
from wttm_core.theory.shared_student import (
    SharedStudentData,
    SharedStudentRun,
    compare_weightings,
    shared_student_data,
    train_shared_student,
)
from wttm_core.theory.teacher_model import sample_teacher_logits

__all__ = [
    "DerivationStep",
    "FlowResult",
    "FLOW_METHODS",
    "SIMPLEX_VERTICES",
    "beta_from_lambda",
    "lambda_from_beta",
    "derivation_steps",
    "eq15_terms",
    "decomposition_over_temperature",
    "kd_objective",
    "ttm_objective",
    "optimal_student_ttm",
    "optimal_student_kd",
    "sharpness_profile",
    "SharedStudentData",
    "SharedStudentRun",
    "compare_weightings",
    "shared_student_data",
    "train_shared_student",
    "gradient_flow",
    "probability_velocity",
    "simplex_xy",
    "renyi_curve",
    "pointwise_map_properties",
    "sample_teacher_logits",
]
