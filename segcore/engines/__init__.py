"""Inference engines behind one small interface: feed numpy arrays by input name, get outputs by name."""

from __future__ import annotations

from pathlib import Path

from segcore.engines.base import Engine, EngineOptions
from segcore.modelconfig import ModelConfig

ENGINE_NAMES = ("auto", "paddle", "onnxruntime")


def resolve_engine_name(config: ModelConfig | None, requested: str) -> str:
    """'auto' means ONNX Runtime when the model has a verified ONNX copy, else Paddle Inference.

    `config` is None for a plain Paddle Serving dir (no segserving.yaml), which only Paddle Inference runs.
    """
    if requested not in ENGINE_NAMES:
        raise ValueError(f"engine must be one of {', '.join(ENGINE_NAMES)}, got {requested!r}")
    if config is None:
        if requested == "onnxruntime":
            raise ValueError("a plain Paddle Serving dir has no ONNX copy; convert it with python -m convert")
        return "paddle"
    if requested == "auto":
        return "onnxruntime" if config.onnx is not None and config.onnx.check.passed else "paddle"
    if requested == "onnxruntime" and config.onnx is None:
        raise ValueError(f"model {config.name!r} has no ONNX copy; convert it with --onnx or use --engine paddle")
    return requested


def create_engine(server_dir: Path, config: ModelConfig, engine: str, options: EngineOptions) -> Engine:
    """Load the model in `server_dir` on the named engine ('auto' resolves as in resolve_engine_name)."""
    name = resolve_engine_name(config, engine)
    if name == "onnxruntime":
        from segcore.engines.onnx_runtime import OnnxRuntimeEngine

        assert config.onnx is not None
        return OnnxRuntimeEngine(server_dir / config.onnx.file, config.onnx, options)
    from segcore.engines.paddle_inference import PaddleEngine

    return PaddleEngine(server_dir / config.files.model_file, server_dir / config.files.params_file, options)


__all__ = ["ENGINE_NAMES", "Engine", "EngineOptions", "create_engine", "resolve_engine_name"]
