"""The data preview of notebook 05: an image grid under class names and a teacher's soft output, coloured by role."""

from __future__ import annotations

import pytest
import torch

from wttm_core.viz.samples import image_grid_figure, soft_output_figure
from wttm_core.viz.style import COLORS


def test_image_grid_has_one_titled_image_per_sample() -> None:
    images = torch.randint(0, 256, (7, 3, 32, 32), dtype=torch.uint8)
    figure = image_grid_figure(images, [f"class {i}" for i in range(7)], columns=4)
    assert len(figure.data) == 7 and all(trace.type == "image" for trace in figure.data)
    assert [a.text for a in figure.layout.annotations] == [f"class {i}" for i in range(7)]
    assert (figure.data[2].z == images[2].permute(1, 2, 0).numpy()).all()
    with pytest.raises(ValueError, match="titles"):
        image_grid_figure(images, ["one"])
    with pytest.raises(ValueError, match="images"):
        image_grid_figure(images[0], ["x"])


def test_soft_output_shows_the_largest_probabilities_coloured_by_role() -> None:
    p = torch.tensor([0.05, 0.6, 0.2, 0.1, 0.05])
    figure = soft_output_figure(p, ["a", "b", "c", "d", "e"], true_class=1, siblings=[2], top=3)
    bars = figure.data[0]
    assert list(bars.x) == ["b", "c", "d"] and list(bars.y) == pytest.approx([0.6, 0.2, 0.1])
    assert list(bars.marker.color)[:2] == [COLORS["teacher"], COLORS["transformed"]]
    with pytest.raises(ValueError, match="probabilities"):
        soft_output_figure(p, ["a"], true_class=0, siblings=[])
