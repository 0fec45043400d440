"""Rewrite a PIR program so paddle2onnx can export it with a dynamic input height and width.

paddle2onnx refuses adaptive pooling unless the pooled tensor's H and W are static ("Adaptive only support
static input shape"), and PP-LiteSeg's context module pools to 1x1, 2x2 and 4x4 bins. Adaptive pooling to k
bins along an axis of length n averages (or maxes) bin i = [floor(i*n/k), ceil((i+1)*n/k)), and it separates
over the two axes, so each such op becomes 2k slices with bounds computed from the runtime shape, reduced and
concatenated: ops that ONNX exports with dynamic shapes. The rewritten program is only the ONNX exporter's
input; the served Paddle program is left as exported, and the ONNX copy is verified against it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _bins(x: Any, axis: int, k: int, reduce: Any) -> Any:
    import paddle

    n = paddle.shape(x)[axis]
    parts = []
    for i in range(k):
        start = (n * i) // k
        end = (n * (i + 1) + (k - 1)) // k
        parts.append(reduce(paddle.slice(x, axes=[axis], starts=[start], ends=[end]), axis=axis, keepdim=True))
    return parts[0] if k == 1 else paddle.concat(parts, axis=axis)


def _rewritable(op: Any) -> tuple[int, int] | None:
    """(bins_h, bins_w) of an adaptive pool2d that pools a dynamic H or W into more than one bin, else None."""
    if op.name() != "pd_op.pool2d":
        return None
    attrs = op.attrs()
    if not attrs.get("adaptive") or attrs.get("pooling_type") not in ("avg", "max"):
        return None
    x, kernel = op.operands_source()[:2]
    maker = kernel.get_defining_op()
    if maker is None or maker.name() != "pd_op.full_int_array":
        return None
    size = [int(v) for v in maker.attrs()["value"]]
    kh, kw = (size * 2)[:2] if len(size) == 1 else size[:2]
    h_axis, w_axis = (1, 2) if attrs.get("data_format") == "NHWC" else (2, 3)
    shape = list(x.shape)
    if max(kh, kw) <= 1 or (shape[h_axis] > 0 and shape[w_axis] > 0):
        return None
    return kh, kw


def rewrite_adaptive_pools(program_file: Path, out_file: Path) -> int:
    """Write `program_file` (a PIR model.json) with its dynamic adaptive pools replaced to `out_file`.

    Returns how many ops were rewritten; 0 means nothing needed it and `out_file` was not written."""
    import paddle
    from paddle.base.libpaddle import pir

    paddle.enable_static()
    program = paddle.static.Program()
    paddle.base.core.deserialize_pir_program(str(program_file), program)
    block = program.global_block()
    targets = [(op, bins) for op in block.ops if (bins := _rewritable(op)) is not None]
    if not targets:
        return 0
    with paddle.static.program_guard(program):
        for op, (kh, kw) in targets:
            x = op.operands_source()[0]
            h_axis, w_axis = (1, 2) if op.attrs().get("data_format") == "NHWC" else (2, 3)
            reduce = paddle.mean if op.attrs()["pooling_type"] == "avg" else paddle.max
            pir.set_insertion_point(op)
            pooled = _bins(_bins(x, w_axis, kw, reduce), h_axis, kh, reduce)
            op.results()[0].replace_all_uses_with(pooled)
            block.remove_op(op)
    # (program, path, overwrite, readable, trainable): the arguments paddle.static.save_inference_model uses
    paddle.base.core.serialize_pir_program(program, str(out_file), True, False, True)
    return len(targets)
