"""A worker runs OpenCV on as many threads as its engine (one per worker by default), so that OpenCV's own pool
does not spin beside the other workers, on the CPU and on a GPU alike."""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import pytest

from segcore.engines import EngineOptions
from server.workers.process import tune_process


@pytest.fixture
def restore_opencv_threads() -> Iterator[int]:
    before = cv2.getNumThreads()
    yield before
    cv2.setNumThreads(before)


def test_cpu_workers_give_opencv_their_engine_threads(restore_opencv_threads: int) -> None:
    tune_process(EngineOptions(cpu_threads=1))
    assert cv2.getNumThreads() == 1
    tune_process(EngineOptions(cpu_threads=2))
    assert cv2.getNumThreads() == 2


def test_gpu_workers_give_opencv_their_engine_threads_too(restore_opencv_threads: int) -> None:
    cv2.setNumThreads(3)
    tune_process(EngineOptions(device="gpu", cpu_threads=1))
    assert cv2.getNumThreads() == 1
