"""Inference engines behind one small interface: feed numpy arrays by input name, get outputs by name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from segcore.engines.base import Engine, EngineOptions
from segcore.engines.fixed_batch import FixedBatchEngine
from segcore.modelconfig import ModelConfig

ENGINE_NAMES = ("auto", "paddle", "onnxruntime")


@dataclass(frozen=True)
class EngineChoice:
    """The engine a model runs on, and why (for the server's log)."""

    name: str
    reason: str


def choose_engine(config: ModelConfig | None, requested: str) -> EngineChoice:
    """'auto' means ONNX Runtime when the model has a verified ONNX copy, else Paddle Inference. ValueError, in one
    line, for an unknown engine or ONNX Runtime asked for a model without an ONNX copy.

    `config` is None for a plain Paddle Serving dir (no segserving.yaml), which only Paddle Inference runs.
    """
    if requested not in ENGINE_NAMES:
        raise ValueError(f"engine must be one of {', '.join(ENGINE_NAMES)}, got {requested!r}")
    if config is None:
        if requested == "onnxruntime":
            raise ValueError("a plain Paddle Serving dir has no ONNX copy; convert it with python -m convert")
        return EngineChoice("paddle", "a plain Paddle Serving dir (no segserving.yaml) runs on Paddle Inference")
    if requested == "auto":
        if config.onnx is None:
            why = f" ({config.onnx_missing})" if config.onnx_missing else ""
            return EngineChoice("paddle", f"auto: the model has no ONNX copy{why}")
        if not config.onnx.check.passed:
            return EngineChoice("paddle", "auto: its ONNX copy did not pass verification against Paddle")
        return EngineChoice("onnxruntime", "auto: the model has an ONNX copy verified against Paddle")
    if requested == "onnxruntime" and config.onnx is None:
        why = f" ({config.onnx_missing})" if config.onnx_missing else " (converted with --no-onnx)"
        raise ValueError(f"model {config.name!r} has no ONNX copy{why}; use --engine paddle or --engine auto")
    return EngineChoice(requested, "--engine " + requested)


def resolve_engine_name(config: ModelConfig | None, requested: str) -> str:
    """The name of choose_engine's choice."""
    return choose_engine(config, requested).name


def create_engine(server_dir: Path, config: ModelConfig, engine: str, options: EngineOptions) -> Engine:
    """Load the model in `server_dir` on the named engine ('auto' resolves as in resolve_engine_name); an export
    with a fixed batch dimension takes batches of any size through FixedBatchEngine."""
    name = resolve_engine_name(config, engine)
    loaded: Engine
    if name == "onnxruntime":
        from segcore.engines.onnx_runtime import OnnxRuntimeEngine

        assert config.onnx is not None
        loaded = OnnxRuntimeEngine(server_dir / config.onnx.file, config.onnx, options)
    else:
        from segcore.engines.paddle_inference import PaddleEngine

        loaded = PaddleEngine(server_dir / config.files.model_file, server_dir / config.files.params_file, options)
    batch = config.input_shape[0] if config.input_shape else None
    return FixedBatchEngine(loaded, batch) if batch else loaded
