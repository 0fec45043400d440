"""Read a ``.tflite`` flatbuffer into a small, framework-neutral graph.

Constant tensors are materialised as numpy arrays; ``DEQUANTIZE`` ops whose
input is a float16 constant are folded into float32 constants, so the returned
graph only contains compute ops.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tflite

#: Op types the Paddle builder knows how to replay.
SUPPORTED_OPS = frozenset(
    {
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "HARD_SWISH",
        "RELU",
        "RELU6",
        "PRELU",
        "LOGISTIC",
        "AVERAGE_POOL_2D",
        "MAX_POOL_2D",
        "ADD",
        "MUL",
        "RESIZE_BILINEAR",
        "PAD",
        "RESHAPE",
        "CONCATENATION",
        "CUSTOM:Convolution2DTransposeBias",
    }
)

_OP_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
_DTYPES: dict[int, np.dtype] = {
    tflite.TensorType.FLOAT32: np.dtype("<f4"),
    tflite.TensorType.FLOAT16: np.dtype("<f2"),
    tflite.TensorType.INT32: np.dtype("<i4"),
    tflite.TensorType.INT64: np.dtype("<i8"),
    tflite.TensorType.INT8: np.dtype("i1"),
    tflite.TensorType.UINT8: np.dtype("u1"),
}
_PADDING = {tflite.Padding.SAME: "SAME", tflite.Padding.VALID: "VALID"}
_ACTIVATIONS = {v: k for k, v in vars(tflite.ActivationFunctionType).items() if not k.startswith("_")}
# MediaPipe's custom transpose conv stores a raw TfLiteTransposeConvParams
# struct: {TfLitePadding padding; int stride_width; int stride_height;}
# where TfLitePadding is 0=unknown, 1=SAME, 2=VALID.
_CUSTOM_PADDING = {1: "SAME", 2: "VALID"}


@dataclass
class Tensor:
    """A graph tensor; ``shape`` is the TFLite (NHWC) shape."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    data: np.ndarray | None = None

    @property
    def is_const(self) -> bool:
        return self.data is not None


@dataclass
class Op:
    """One compute op; ``inputs`` may contain ``-1`` for an omitted optional input."""

    index: int
    type: str
    inputs: list[int]
    outputs: list[int]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Graph:
    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]


def read_tflite(path: str | Path) -> Graph:
    """Parse ``path`` (subgraph 0), fold fp16 dequantization, and validate op types.

    Raises ``ValueError`` naming every unsupported op type.
    """
    raw = Path(path).read_bytes()
    model = tflite.Model.GetRootAsModel(raw, 0)
    if model.SubgraphsLength() < 1:
        raise ValueError(f"{path}: model has no subgraph")
    sub = model.Subgraphs(0)
    tensors = [_read_tensor(model, sub.Tensors(i), raw) for i in range(sub.TensorsLength())]
    ops: list[Op] = []
    unsupported: dict[str, list[int]] = {}
    for i in range(sub.OperatorsLength()):
        fb_op = sub.Operators(i)
        op_type = _op_type(model.OperatorCodes(fb_op.OpcodeIndex()))
        inputs = [int(t) for t in _as_list(fb_op.InputsAsNumpy())]
        outputs = [int(t) for t in _as_list(fb_op.OutputsAsNumpy())]
        if op_type == "DEQUANTIZE" and tensors[inputs[0]].is_const:
            tensors[outputs[0]].data = _dequantize(tensors[inputs[0]])
            continue
        if op_type not in SUPPORTED_OPS:
            unsupported.setdefault(op_type, []).append(i)
            continue
        ops.append(Op(i, op_type, inputs, outputs, _read_options(op_type, fb_op)))
    if unsupported:
        detail = ", ".join(f"{name} (op #{', #'.join(map(str, idx))})" for name, idx in unsupported.items())
        raise ValueError(f"{path}: unsupported TFLite op type(s): {detail}")
    graph_in = [int(t) for t in _as_list(sub.InputsAsNumpy())]
    graph_out = [int(t) for t in _as_list(sub.OutputsAsNumpy())]
    return Graph(tensors, ops, graph_in, graph_out)


def _as_list(arr: Any) -> list[int]:
    # flatbuffers returns the int 0 instead of an empty array for absent vectors
    return [] if isinstance(arr, int) else list(arr)


def _op_type(code: tflite.OperatorCode) -> str:
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    name = _OP_NAMES.get(builtin, f"BUILTIN_{builtin}")
    if name == "CUSTOM":
        custom = code.CustomCode()
        return f"CUSTOM:{custom.decode() if custom else '?'}"
    return name


def _read_tensor(model: tflite.Model, t: tflite.Tensor, raw: bytes) -> Tensor:
    name = t.Name().decode()
    shape = tuple(int(d) for d in _as_list(t.ShapeAsNumpy()))
    dtype = _DTYPES.get(t.Type())
    buf = model.Buffers(t.Buffer()) if t.Buffer() > 0 else None
    data = None
    if buf is not None:
        if buf.DataLength() > 0:
            payload = buf.DataAsNumpy().tobytes()
        elif buf.Offset() > 1:  # large models keep buffers after the flatbuffer
            payload = raw[buf.Offset() : buf.Offset() + buf.Size()]
        else:
            payload = b""
        if payload:
            if dtype is None:
                raise ValueError(f"constant tensor {name!r} has unsupported type {t.Type()}")
            data = np.frombuffer(payload, dtype=dtype).reshape(shape).copy()
    return Tensor(name, shape, dtype if dtype is not None else np.dtype("f4"), data)


def _dequantize(t: Tensor) -> np.ndarray:
    assert t.data is not None
    if t.data.dtype != np.float16:
        raise ValueError(f"DEQUANTIZE of {t.name!r}: only float16 constants are supported, got {t.data.dtype}")
    return t.data.astype(np.float32)


def _init(cls: type, fb_op: tflite.Operator) -> Any:
    table = fb_op.BuiltinOptions()
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    return opts


def _act(code: int) -> str:
    return _ACTIVATIONS.get(code, str(code))


def _read_options(op_type: str, fb_op: tflite.Operator) -> dict[str, Any]:
    if op_type in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        cls = tflite.Conv2DOptions if op_type == "CONV_2D" else tflite.DepthwiseConv2DOptions
        o = _init(cls, fb_op)
        return {
            "padding": _PADDING[o.Padding()],
            "stride": (o.StrideH(), o.StrideW()),
            "dilation": (o.DilationHFactor(), o.DilationWFactor()),
            "activation": _act(o.FusedActivationFunction()),
        }
    if op_type in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        o = _init(tflite.Pool2DOptions, fb_op)
        return {
            "padding": _PADDING[o.Padding()],
            "stride": (o.StrideH(), o.StrideW()),
            "filter": (o.FilterHeight(), o.FilterWidth()),
            "activation": _act(o.FusedActivationFunction()),
        }
    if op_type in ("ADD", "MUL"):
        cls = tflite.AddOptions if op_type == "ADD" else tflite.MulOptions
        return {"activation": _act(_init(cls, fb_op).FusedActivationFunction())}
    if op_type == "CONCATENATION":
        o = _init(tflite.ConcatenationOptions, fb_op)
        return {"axis": o.Axis(), "activation": _act(o.FusedActivationFunction())}
    if op_type == "RESHAPE" and fb_op.BuiltinOptions() is not None:
        return {"new_shape": tuple(int(d) for d in _as_list(_init(tflite.ReshapeOptions, fb_op).NewShapeAsNumpy()))}
    if op_type == "RESIZE_BILINEAR":
        o = _init(tflite.ResizeBilinearOptions, fb_op)
        return {"align_corners": bool(o.AlignCorners()), "half_pixel_centers": bool(o.HalfPixelCenters())}
    if op_type == "CUSTOM:Convolution2DTransposeBias":
        blob = fb_op.CustomOptionsAsNumpy().tobytes() if fb_op.CustomOptionsLength() else b""
        if len(blob) != 12:
            raise ValueError(f"Convolution2DTransposeBias: expected 12 option bytes, got {len(blob)}")
        padding, stride_w, stride_h = struct.unpack("<3i", blob)
        if padding not in _CUSTOM_PADDING:
            raise ValueError(f"Convolution2DTransposeBias: unknown padding code {padding}")
        return {"padding": _CUSTOM_PADDING[padding], "stride": (stride_h, stride_w)}
    return {}
