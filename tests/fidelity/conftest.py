"""PaddleSeg-made exports, converted once per test session, and PaddleSeg's reference labels for them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from helpers import TOOLS_PYTHON, run_convert

from benchmarks.paddleseg_exports import KINDS, build_exports
from benchmarks.paddleseg_reference import PaddleSegReference

# (width, height): landscape HD, odd portrait, VGA, and a long thin strip.
IMAGE_SIZES = ((1280, 720), (333, 517), (640, 480), (200, 1000))


def agreement_floor(export: str) -> float:
    """The issue's figures: 99.99% of pixels for the trained model, 99.9% for random weights (near-ties)."""
    return 0.9999 if KINDS[export.rsplit("-", 1)[0]].trained else 0.999


@pytest.fixture(scope="session")
def paddleseg_exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{"<kind>-<format>": export dir} for every kind, in each format this Paddle can write."""
    return build_exports(tmp_path_factory.mktemp("paddleseg-exports"), python=TOOLS_PYTHON)


@pytest.fixture(scope="session")
def paddleseg_repository(paddleseg_exports: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model repository with every export converted by `python -m convert` (ONNX copy included)."""
    root = tmp_path_factory.mktemp("paddleseg-repository")
    for name, export in paddleseg_exports.items():
        entry = root / name
        proc = run_convert("--dirname", export, "--serving_server", entry / "serving_server",
                           "--serving_client", entry / "serving_client")  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
    return root


@pytest.fixture(scope="session")
def test_images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """PNG photos of discs and boxes (what the trained model learnt) at IMAGE_SIZES."""
    from benchmarks.fidelity import photos

    return photos(tmp_path_factory.mktemp("fidelity-images"), IMAGE_SIZES)


@pytest.fixture(scope="session")
def reference_labels(paddleseg_exports: dict[str, Path], test_images: list[Path]) -> Callable[[str, Path], np.ndarray]:
    """reference_labels(export, image) -> PaddleSeg's labels (cached)."""
    references: dict[str, PaddleSegReference] = {}
    cache: dict[tuple[str, Path], np.ndarray] = {}

    def labels(export: str, image: Path) -> np.ndarray:
        if (export, image) not in cache:
            if export not in references:
                references[export] = PaddleSegReference(paddleseg_exports[export])
            cache[export, image] = references[export](image)
        return cache[export, image]

    return labels
