"""Model descriptions as JSON documents: SegServing's /v1/models entries and KServe v2 model metadata."""

from __future__ import annotations

from importlib import metadata
from typing import Any

from server.codecs.kserve import tensor_metadata
from server.dataplane import ModelInfo
from server.errors import NotFound

# the Open Inference Protocol extensions this server speaks (server metadata, HTTP and gRPC)
OIP_EXTENSIONS = ["binary_tensor_data", "statistics", "model_configuration", "model_repository"]

KSERVE_KEYS = ("name", "versions", "platform", "inputs", "outputs")


def describe(info: ModelInfo) -> dict[str, Any]:
    """The /v1/models/{name} document (its first keys are KServe v2's model metadata)."""
    spec, config = info.spec, info.spec.config
    dims = config.input_shape if config else None
    post = config.postprocess if config else None
    return {
        "name": spec.name,
        "versions": ["1"],
        "platform": info.engine,
        "inputs": [tensor_metadata(v, dims if i == 0 else None) for i, v in enumerate(spec.conf.feeds)],
        "outputs": [
            tensor_metadata(v, config.output_shapes.get(v.name) if config else None) for v in spec.conf.fetches
        ],
        "image_api": bool(config and config.preprocess),
        "output_op": post.output_op if post else None,
        "num_classes": post.num_classes if post else None,
        "class_names": post.class_names if post else None,
        "ready": info.ready,
        "workers": info.workers,
    }


def kserve_metadata(info: ModelInfo) -> dict[str, Any]:
    """GET /v2/models/{name}: KServe v2's model metadata."""
    doc = describe(info)
    return {key: doc[key] for key in KSERVE_KEYS}


def triton_config(info: ModelInfo) -> dict[str, Any]:
    """GET /v2/models/{name}/config and gRPC ModelConfig: Triton's model configuration, the fields that describe
    this server (tensors without the batch dimension, dynamic batching, worker processes as instance groups)."""
    doc = describe(info)
    batch, settings = info.settings.batch, info.settings
    kind = "KIND_GPU" if settings.gpu_ids else "KIND_CPU"
    group: dict[str, Any] = {"name": info.spec.name, "kind": kind, "count": settings.workers}
    if settings.gpu_ids:
        group["gpus"] = list(settings.gpu_ids)

    def tensors(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"name": t["name"], "data_type": f"TYPE_{t['datatype'].replace('BYTES', 'STRING')}",
                 "dims": [int(d) for d in t["shape"][1:]]} for t in entries]  # fmt: skip

    return {
        "name": info.spec.name,
        "platform": "onnxruntime_onnx" if info.engine == "onnxruntime" else "paddle",
        "backend": info.engine,
        "max_batch_size": batch.batch_size,
        "input": tensors(doc["inputs"]),
        "output": tensors(doc["outputs"]),
        "instance_group": [group],
        "default_model_filename": _model_file(info),
        "dynamic_batching": {
            "preferred_batch_size": [batch.batch_size],
            "max_queue_delay_microseconds": int(batch.batch_timeout_s * 1e6),
        },
    }


def _model_file(info: ModelInfo) -> str:
    config = info.spec.config
    if config is None:
        return ""
    if info.engine == "onnxruntime" and config.onnx is not None:
        return config.onnx.file
    return config.files.model_file


def server_version() -> str:
    try:
        return metadata.version("segserving")
    except metadata.PackageNotFoundError:
        return "dev"


def server_metadata() -> dict[str, Any]:
    return {"name": "segserving", "version": server_version(), "extensions": OIP_EXTENSIONS}


def check_version(name: str, version: str | None) -> None:
    """Every model has the one version "1" (a request naming no version means it); 404 for any other."""
    if version not in (None, "", "1"):
        raise NotFound(f"model {name!r} has no version {version!r}; its only version is 1")


def repository_index(readiness: dict[str, bool], ready_only: bool) -> list[dict[str, str]]:
    """The repository index: every served model with its state (only the ready ones if `ready_only`)."""
    return [{"name": name, "version": "1", "state": "READY" if ok else "UNAVAILABLE",
             "reason": "" if ok else "loading or restarting"}
            for name, ok in readiness.items() if ok or not ready_only]  # fmt: skip
