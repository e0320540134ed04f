"""Plotly figure builders and slider helpers for the notebooks (one module per figure family).

- :mod:`~wttm_core.viz.style`: the Okabe-Ito palette, layout defaults, :class:`FigureSpec`;
- :mod:`~wttm_core.viz.widgets`: :class:`Control` and :class:`LivePanel` (sliders -> FigureWidgets, or static);
- :mod:`~wttm_core.viz.distributions`: power transform, Renyi curves, point-wise maps (Eqs. 4, 7-9, Fig. 4);
- :mod:`~wttm_core.viz.decomposition`: Eq. 15 waterfall, KD/Renyi trade-off, optimal students (Eq. 19);
- :mod:`~wttm_core.viz.gradients`: the 3-class simplex view and gradient flows (Eqs. 20-21);
- :mod:`~wttm_core.viz.weights`: WTTM's weights over a batch (Eqs. 22-23);
- :mod:`~wttm_core.viz.panels`: typeset symbols, "what to notice" notes, side-by-side panels;
- :mod:`~wttm_core.viz.tables`: Markdown tables (the one table writer) and the original answer check (notebooks use
  :mod:`wttm_core.exercises`, which hints before it reveals and never raises).

The figures of the theory modules are ``*_spec`` builders: they take plain numbers, arrays or tensors and return
a :class:`FigureSpec` (plain data, for fast slider updates); ``spec.to_figure()`` gives the
``plotly.graph_objects.Figure``. The training-run figures (:mod:`~wttm_core.viz.dynamics`,
:mod:`~wttm_core.viz.samples`) build figures directly.
"""

from wttm_core.viz.distributions import distribution_bars
from wttm_core.viz.style import COLORS, OKABE_ITO, FigureSpec
from wttm_core.viz.tables import check_answer, markdown_records, markdown_table
from wttm_core.viz.widgets import Control, LivePanel

__all__ = [
    "COLORS",
    "OKABE_ITO",
    "Control",
    "FigureSpec",
    "LivePanel",
    "check_answer",
    "distribution_bars",
    "markdown_records",
    "markdown_table",
]
