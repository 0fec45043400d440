"""ONNX Runtime on CUDA (marked gpu: skipped without an NVIDIA GPU and onnxruntime-gpu): the bundled model's
outputs on the GPU match the CPU's, alone and batched, and the engine says which provider runs it."""

from __future__ import annotations

import numpy as np
import pytest

from segcore.engines import EngineOptions, create_engine
from segcore.engines.base import Engine
from segcore.repository import ModelRepository

pytestmark = pytest.mark.gpu


def _engine(device: str, **options: object) -> Engine:
    spec = ModelRepository().resolve("portrait")
    assert spec.config is not None
    return create_engine(spec.server_dir, spec.config, "onnxruntime", EngineOptions(device=device, **options))


@pytest.fixture(scope="module")
def feeds() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"image": rng.uniform(-1, 1, (4, 3, 256, 256)).astype(np.float32)}


def test_cuda_provider_is_the_one_that_runs() -> None:
    engine = _engine("gpu")
    assert engine.providers[0] == "CUDAExecutionProvider"  # type: ignore[attr-defined]


def test_gpu_outputs_match_cpu_batched_and_alone(feeds: dict[str, np.ndarray]) -> None:
    gpu, cpu = _engine("gpu"), _engine("cpu")
    on_gpu = gpu.run(feeds)["fetch_name_0"]
    on_cpu = cpu.run(feeds)["fetch_name_0"]
    assert on_gpu.shape == on_cpu.shape == (4, 1, 256, 256)
    # TF32 convolutions on the GPU: close, not equal; the mask (logit > 0) agrees almost everywhere
    assert np.abs(on_gpu - on_cpu).max() < 0.05
    assert np.mean((on_gpu > 0) == (on_cpu > 0)) > 0.999
    # cuDNN may pick other kernels for another batch size: the logits move by about 1e-3, the masks stay
    alone = np.concatenate([gpu.run({"image": feeds["image"][i : i + 1]})["fetch_name_0"] for i in range(4)])
    assert np.abs(alone - on_gpu).max() < 0.05
    assert np.mean((alone > 0) == (on_gpu > 0)) > 0.999


def test_use_trt_without_tensorrt_fails_loudly_instead_of_serving_cuda_fp32() -> None:
    import onnxruntime as ort

    try:
        engine = _engine("gpu", use_trt=True, precision="fp16")
    except RuntimeError as exc:
        assert "TensorRT" in str(exc)
        return
    # TensorRT is installed here: then it really is the provider in front
    assert "TensorrtExecutionProvider" in ort.get_available_providers()
    assert engine.providers[0] == "TensorrtExecutionProvider"  # type: ignore[attr-defined]
