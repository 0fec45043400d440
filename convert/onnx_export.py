"""Export an ONNX copy with paddle2onnx and verify it against the Paddle predictor.

paddle2onnx aborts the whole process on some models (e.g. adaptive pooling with dynamic H, W), so the
export runs in a child process: `python -m convert.onnx_export PROGRAM PARAMS OUT.onnx OPSET`.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convert.child import run_module
from convert.loader import ConvertError
from convert.onnx_rewrite import rewrite_adaptive_pools
from segcore.engines.base import EngineOptions
from segcore.modelconfig import OnnxCheck, OnnxInfo

DEFAULT_OPSET = 13
PROB_TOLERANCE = 1e-4
# Argmax outputs of random or weakly trained nets have near-ties that float rounding flips (1 pixel in 500k
# seen); anything beyond 1 in 10,000 is a wrong graph, not rounding.
LABEL_AGREEMENT = 0.9999
REWRITE_MARK = "segserving-rewrite: "
_ADAPTIVE_HINT = (
    "the model uses adaptive pooling on a dynamic input height and width, which paddle2onnx exports only from "
    "a static shape (SegServing rewrites it in PIR model.json programs, not in legacy ones): re-export it with "
    "PaddleSeg's `tools/export.py --input_shape 1 3 H W` for an ONNX copy"
)


@dataclass(frozen=True)
class ExportResult:
    path: Path
    opset: int
    input_names: list[str]
    output_names: list[str]
    rewrites: list[str]


def export_onnx(program: Path, params: Path, out_file: Path, opset: int = DEFAULT_OPSET) -> ExportResult:
    """Run paddle2onnx in a child process; ConvertError with a hint when it fails."""
    with tempfile.TemporaryDirectory() as tmp:
        # paddle2onnx looks for the params beside the program under the same stem.
        linked_program, linked_params = Path(tmp) / f"model{program.suffix}", Path(tmp) / "model.pdiparams"
        linked_program.symlink_to(program.absolute())
        linked_params.symlink_to(params.absolute())
        proc = run_module("convert.onnx_export", [str(linked_program), str(linked_params), str(out_file), str(opset)])
    output = proc.stdout + proc.stderr
    if proc.returncode != 0 or not out_file.is_file():
        if "Adaptive only support static input shape" in output:
            raise ConvertError(f"ONNX export failed: {_ADAPTIVE_HINT}")
        errors = [line for line in output.splitlines() if "ERROR" in line or "Error" in line]
        detail = errors[-1] if errors else output.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        raise ConvertError(f"ONNX export failed (paddle2onnx): {' '.join(str(detail).split())[:400]}")
    import onnx

    model = onnx.load(str(out_file), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    return ExportResult(
        rewrites=[line.split(REWRITE_MARK, 1)[1] for line in proc.stdout.splitlines() if REWRITE_MARK in line],
        path=out_file,
        opset=max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=opset),
        input_names=[i.name for i in model.graph.input if i.name not in initializers],
        output_names=[o.name for o in model.graph.output],
    )


def verify_onnx(
    paddle_outputs: dict[str, np.ndarray],
    feeds: dict[str, np.ndarray],
    onnx_file: Path,
    paddle_input_names: list[str],
    paddle_output_names: list[str],
    exported: ExportResult,
    tolerance: float = PROB_TOLERANCE,
) -> OnnxInfo:
    """Compare ONNX Runtime with Paddle's outputs on the same feeds; labels must agree on LABEL_AGREEMENT of
    the pixels, float outputs within `tolerance`. Returns the OnnxInfo to record (check.passed: the verdict)."""
    from segcore.engines.onnx_runtime import OnnxRuntimeEngine

    if len(exported.input_names) != len(paddle_input_names) or len(exported.output_names) != len(paddle_output_names):
        raise ConvertError(
            f"ONNX export has inputs {exported.input_names} / outputs {exported.output_names}, "
            f"the Paddle model {paddle_input_names} / {paddle_output_names}"
        )
    info = OnnxInfo(
        file=onnx_file.name,
        opset=exported.opset,
        input_names=paddle_input_names,
        output_names=paddle_output_names,
        rewrites=exported.rewrites,
        check=OnnxCheck(passed=False, sample_shape=list(next(iter(feeds.values())).shape), tolerance=tolerance),
    )
    try:
        onnx_outputs = OnnxRuntimeEngine(onnx_file, info, EngineOptions(cpu_threads=1)).run(feeds)
    except Exception as exc:  # onnxruntime raises its own exception types for broken graphs
        raise ConvertError(f"ONNX Runtime cannot run the exported model: {' '.join(str(exc).split())[:300]}") from exc
    agreement: float | None = None
    max_diff: float | None = None
    for name in paddle_output_names:
        ref, got = paddle_outputs[name], onnx_outputs[name]
        if ref.shape != got.shape:
            raise ConvertError(f"ONNX output {name} has shape {list(got.shape)}, Paddle's {list(ref.shape)}")
        if np.issubdtype(ref.dtype, np.integer) or ref.dtype == np.bool_:
            value = float(np.mean(ref == got)) if ref.size else 1.0
            agreement = value if agreement is None else min(agreement, value)
        else:
            value = float(np.max(np.abs(ref.astype(np.float64) - got.astype(np.float64)))) if ref.size else 0.0
            max_diff = value if max_diff is None else max(max_diff, value)
    passed = (agreement is None or agreement >= LABEL_AGREEMENT) and (max_diff is None or max_diff <= tolerance)
    check = info.check.model_copy(update={"passed": passed, "label_agreement": agreement, "max_abs_diff": max_diff})
    return info.model_copy(update={"check": check})


def _main(program: str, params: str, out_file: str, opset: str) -> None:
    import paddle2onnx

    with tempfile.TemporaryDirectory() as tmp:
        if program.endswith(".json"):
            rewritten = Path(tmp) / "model.json"
            count = rewrite_adaptive_pools(Path(program), rewritten)
            if count:
                (Path(tmp) / "model.pdiparams").symlink_to(Path(params).resolve())
                program, params = str(rewritten), str(Path(tmp) / "model.pdiparams")
                print(f"{REWRITE_MARK}{count} adaptive pooling ops on a dynamic H, W exported as slices", flush=True)
        paddle2onnx.export(
            program,
            params,
            save_file=out_file,
            opset_version=int(opset),
            auto_upgrade_opset=True,
            enable_onnx_checker=True,
            enable_optimize=True,
            optimize_tool="None",
        )


if __name__ == "__main__":
    _main(*sys.argv[1:5])
