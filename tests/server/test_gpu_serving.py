"""A server on GPU 0 (marked gpu: skipped without an NVIDIA GPU and onnxruntime-gpu): its workers report the GPU,
and the image API's masks match a CPU server's on the same photo, unbatched and with dynamic batching."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from conftest import start_server
from skimage import data

pytestmark = pytest.mark.gpu

PHOTO = cv2.imencode(".jpg", cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))[1].tobytes()


def _mask(url: str) -> np.ndarray:
    response = httpx.post(f"{url}/v1/models/portrait/segment", content=PHOTO,
                          headers={"Content-Type": "image/jpeg"}, timeout=60)  # fmt: skip
    assert response.status_code == 200, response.text
    return cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_UNCHANGED)


def test_gpu_workers_serve_the_same_masks_as_the_cpu(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "gpu").mkdir()
    with start_server(tmp_path / "cpu", "--model", "portrait", "--thread", "1") as cpu:
        expected = _mask(cpu.url)
    with start_server(tmp_path / "gpu", "--model", "portrait", "--gpu_ids", "0", "--thread", "2",
                      "--batch_size", "8", "--batch_timeout_ms", "5") as gpu:  # fmt: skip
        workers = httpx.get(f"{gpu.url}/v1/models/portrait", timeout=10).json()["workers"]
        assert [w["device"] for w in workers] == ["gpu:0", "gpu:0"]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:  # concurrent requests form batches
            masks = list(pool.map(lambda _: _mask(gpu.url), range(16)))
    for mask in masks:
        assert mask.shape == expected.shape
        assert np.mean(mask == expected) > 0.998


def test_use_trt_without_tensorrt_stops_the_server_with_the_reason(tmp_path: Path) -> None:
    import onnxruntime as ort

    if "TensorrtExecutionProvider" in ort.get_available_providers():
        pytest.skip("TensorRT's provider is available here")
    with start_server(tmp_path, "--model", "portrait", "--use_trt", "--precision", "fp16", wait=False) as server:
        assert server.process.wait(300) != 0
        assert "TensorRT" in server.log()
