"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest
import torch

from wttm_core.models import build_model, save_checkpoint


@pytest.fixture(scope="session")
def teacher_file(tmp_path_factory):
    """A resnet8 teacher with fixed random weights, saved in the standard checkpoint layout."""
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("teacher") / "teacher.pth"
    save_checkpoint(path, build_model("resnet8"), arch="resnet8", epoch=0, accuracy=1.0)
    torch.random.set_rng_state(generator_state)
    return path
