"""A look at the data before training on it: a grid of images with their class names, and a teacher's soft output.

Plain numbers in, plotly figures out (layer: viz). Notebook 05 shows both before any student trains, so that a
student knows what "the synthetic stand-in" looks like and what the teacher's soft labels say about an image: the
probability it gives to the true class, to the true class's siblings (same superclass) and to the rest.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots
from torch import Tensor

from wttm_core._checks import check_int
from wttm_core.viz.style import COLORS, OKABE_ITO, base_layout

__all__ = ["image_grid_figure", "soft_output_figure"]


def image_grid_figure(images: Tensor, titles: Sequence[str], *, columns: int = 5, title: str = "") -> go.Figure:
    """uint8 images ``[N, 3, H, W]`` in a grid of ``columns``, each under its title (e.g. its class name)."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be [N, 3, H, W], got shape {tuple(images.shape)}")
    if len(titles) != images.shape[0]:
        raise ValueError(f"titles: need one per image ({images.shape[0]}), got {len(titles)}")
    columns = check_int("columns", columns, low=1)
    rows = -(-images.shape[0] // columns)
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=list(titles), horizontal_spacing=0.02)
    for index in range(images.shape[0]):
        pixels = images[index].permute(1, 2, 0).cpu().numpy()
        figure.add_trace(go.Image(z=pixels), row=index // columns + 1, col=index % columns + 1)
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.update_layout(title=title, height=170 * rows + 60, margin={"t": 80, "l": 10, "r": 10, "b": 10})
    figure.update_annotations(font_size=11)
    return figure


def soft_output_figure(
    probabilities: Tensor,
    class_names: Sequence[str],
    *,
    true_class: int,
    siblings: Sequence[int],
    top: int = 10,
    title: str = "",
) -> go.Figure:
    """The ``top`` largest entries of one soft output ``[K]``: the true class in the teacher's colour, its
    siblings (same superclass) in the transformed teacher's colour, other classes grey."""
    if probabilities.dim() != 1 or probabilities.shape[0] != len(class_names):
        raise ValueError(f"probabilities must be [K] with K = {len(class_names)}, got {tuple(probabilities.shape)}")
    order = probabilities.argsort(descending=True)[:top].tolist()
    sibling_set = set(siblings)

    def colour(k: int) -> str:
        if k == true_class:
            return COLORS["teacher"]
        return COLORS["transformed"] if k in sibling_set else OKABE_ITO["sky_blue"]

    figure = go.Figure(
        go.Bar(
            x=[class_names[k] for k in order],
            y=[float(probabilities[k]) for k in order],
            marker={"color": [colour(k) for k in order]},
        )
    )
    figure.update_layout(
        **base_layout(title, "class (black: true class, orange: same superclass)", "probability", height=330)
    )
    return figure
