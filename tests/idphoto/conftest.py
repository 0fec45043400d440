"""Fixtures for the ID-photo tests: the astronaut portrait and the bundled model's person probability for it."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pytest
from skimage import data


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """skimage's astronaut portrait, BGR uint8, 512 x 512."""
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="session")
def person_probability() -> Callable[[np.ndarray], np.ndarray]:
    """person_probability(image) -> the portrait model's person probability for a BGR image (H x W float32)."""
    from segcore.engines import EngineOptions, create_engine
    from segcore.pipeline import SegmentationPipeline
    from segcore.repository import ModelRepository

    spec = ModelRepository().load("portrait")
    assert spec.config is not None
    pipe = SegmentationPipeline(
        spec.config, create_engine(spec.server_dir, spec.config, "onnxruntime", EngineOptions())
    )

    def probability(image: np.ndarray) -> np.ndarray:
        scores = pipe.segment(image, want_scores=True).scores
        assert scores is not None
        return scores[1]

    return probability


@pytest.fixture(scope="session")
def astronaut_probability(astronaut: np.ndarray, person_probability: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The portrait model's person probability for the astronaut (H x W float32)."""
    return person_probability(astronaut)
