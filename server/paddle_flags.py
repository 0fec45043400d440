"""`paddle_serving_server.serve` 0.9 flags that have no counterpart here. Each is accepted, so that a Paddle Serving
start command line starts this server: it is explained in one warning line, or, where ignoring it would serve
something other than what was asked, refused in one line with exit code 1. docs/serve-flags.md lists every 0.9
flag and what it does here; tests/server/test_paddle_flags.py keeps the two in step."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("server.cli")

STANDARD_OPS = {"GeneralReaderOp", "GeneralInferOp", "GeneralResponseOp"}  # what 0.9 builds without --op


@dataclass(frozen=True)
class Legacy:
    """A flag accepted for compatibility: `reason` says why it has no effect (or why it is refused)."""

    flag: str
    reason: str
    refuse: bool = False
    options: dict[str, Any] = field(default_factory=lambda: {"action": "store_true"})

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-")


def _value(kind: type = str, **more: Any) -> dict[str, Any]:
    return {"type": kind, "default": None, **more}


LEGACY: tuple[Legacy, ...] = (
    Legacy("--device", "Paddle Serving 0.9 ignored it too; the device follows --gpu_ids", options=_value()),
    Legacy("--use_calib", "TensorRT int8 calibration is not available: use --precision fp16 (or fp32)"),
    Legacy(
        "--use_encryption_model",
        "encrypted models are not supported: serve the model over TLS instead (--ssl_certfile)",
        refuse=True,
    ),
    Legacy("--encryption_rpc_port", "it only applies to --use_encryption_model", options=_value(int)),
    Legacy("--use_lite", "Paddle-Lite is not used: ONNX Runtime and Paddle Inference run on x86 and ARM CPUs"),
    Legacy("--use_xpu", "Kunlun XPUs are not supported: the model runs on the CPU, or on CUDA GPUs with --gpu_ids"),
    Legacy(
        "--use_ascend_cl", "Ascend NPUs are not supported: the model runs on the CPU, or on CUDA GPUs with --gpu_ids"
    ),
    Legacy("--product_name", "Paddle Serving's legacy authentication field; use --api_key_file", options=_value()),
    Legacy("--container_id", "Paddle Serving's legacy authentication field; use --api_key_file", options=_value()),
    Legacy("--gpu_multi_stream", "every GPU worker is a process with its own CUDA stream already"),
    Legacy(
        "--request_cache_size", "there is no response cache: a repeated request is computed again", options=_value(int)
    ),
    Legacy(
        "--use_dist_model",
        "distributed inference (a model split across servers) is not supported; segmentation models fit one device",
    ),
    Legacy("--dist_carrier_id", "it only applies to --use_dist_model", options=_value()),
    Legacy("--dist_cfg_file", "it only applies to --use_dist_model", options=_value()),
    Legacy("--dist_endpoints", "it only applies to --use_dist_model", options=_value()),
    Legacy("--dist_nranks", "it only applies to --use_dist_model", options=_value(int)),
    Legacy("--dist_subgraph_index", "it only applies to --use_dist_model", options=_value(int)),
    Legacy("--dist_worker_serving_endpoints", "it only applies to --dist_master_serving", options=_value()),
    Legacy(
        "--dist_master_serving",
        "a distributed master (forwarding to worker servings) is not supported: "
        "start this server where the model is, and balance with the SDK's connect([...]) or a proxy",
        refuse=True,
    ),
    Legacy("--min_subgraph_size", "TensorRT's subgraph split is left to the engine", options=_value(nargs="+")),
    Legacy(
        "--gpu_memory_mb", "Paddle Serving 0.9 ignored it too; GPU memory is allocated as needed", options=_value(int)
    ),
    Legacy("--trt_workspace_size", "Paddle Serving 0.9 ignored it too", options=_value(int)),
    Legacy("--trt_use_static", "Paddle Serving 0.9 ignored it too"),
)


def add_legacy_flags(parser: argparse.ArgumentParser) -> None:
    """The flags above and --op, in a group of their own."""
    group = parser.add_argument_group(
        "Paddle Serving 0.9 flags with no effect here (accepted with a warning; docs/serve-flags.md)"
    )
    for legacy in LEGACY:
        group.add_argument(legacy.flag, dest=legacy.dest, help=legacy.reason, **legacy.options)
    group.add_argument("--op", nargs="+", default=None,
                       help="custom C++ ops: refused; the standard GeneralReaderOp/InferOp/ResponseOp chain is what "
                       "runs here")  # fmt: skip


def check_legacy_flags(args: argparse.Namespace) -> str | None:
    """Log one warning per legacy flag given; the reason to refuse the command line (exit 1), if any."""
    for legacy in LEGACY:
        value = getattr(args, legacy.dest)
        if value is None or value is False:
            continue
        if legacy.refuse:
            return f"{legacy.flag}: {legacy.reason}"
        log.warning("%s has no effect here: %s", legacy.flag, legacy.reason)
    if args.op:
        custom = sorted({op.split(":")[0] for op in args.op} - STANDARD_OPS)
        if custom:
            return (f"--op {' '.join(custom)}: custom C++ ops are not supported; SegServing runs the model "
                    "with its own pre- and post-processing (drop --op)")  # fmt: skip
        log.warning("--op %s has no effect here: it is the standard chain, which always runs", " ".join(args.op))
    return None
