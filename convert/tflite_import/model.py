"""Turn a parsed TFLite :class:`Graph` into an NCHW ``paddle.nn.Layer``."""

from __future__ import annotations

import numpy as np
import paddle
from paddle import nn

from .graph import Graph, Op, Tensor
from .layers import (
    ACTIVATION_OPS,
    Activation,
    AvgPool,
    Binary,
    Concat,
    Conv,
    GlobalAvgPool,
    MaxPool,
    Pad,
    PRelu,
    Reshape,
    ResizeBilinear,
    TransposeConv,
    same_pads,
)


class TFLiteNet(nn.Layer):
    """Replays the graph's ops in order: one 4-D input taken NCHW; its outputs in graph order, 4-D ones NCHW and
    others (e.g. a detector's [N, anchors, values]) as TFLite has them. One output is returned bare."""

    def __init__(self, graph: Graph, exact_resize: bool = True) -> None:
        super().__init__()
        if len(graph.inputs) != 1 or not graph.outputs:
            raise ValueError("only single-input models with outputs are supported")
        self.input_id, self.output_ids = graph.inputs[0], list(graph.outputs)
        if len(graph.tensors[self.input_id].shape) != 4:
            raise ValueError(f"tensor {graph.tensors[self.input_id].name!r} is not 4-D NHWC")
        self.steps = nn.LayerList([_build_op(graph, op, exact_resize) for op in graph.ops])
        # (activation input ids, output id) per step; constants live inside the layers
        self.wiring = [
            ([i for i in op.inputs if i >= 0 and not graph.tensors[i].is_const], op.outputs[0]) for op in graph.ops
        ]

    def forward(self, image: paddle.Tensor) -> paddle.Tensor | tuple[paddle.Tensor, ...]:
        env = {self.input_id: image}
        for k, layer in enumerate(self.steps):  # dy2static's zip() takes no strict=
            ins, out = self.wiring[k]
            env[out] = layer(*[env[i] for i in ins])
        if len(self.output_ids) == 1:
            return env[self.output_ids[0]]
        return tuple(env[i] for i in self.output_ids)


def _const(graph: Graph, tid: int) -> np.ndarray | None:
    return None if tid < 0 else graph.tensors[tid].data


def _hw(t: Tensor) -> tuple[int, int]:
    if len(t.shape) != 4:
        raise ValueError(f"tensor {t.name!r}: expected a 4-D NHWC activation, got shape {t.shape}")
    return t.shape[1], t.shape[2]


def _pads(op: Op, in_hw: tuple[int, int], kernel: tuple[int, int]) -> list[int]:
    if op.options["padding"] == "VALID":
        return [0, 0, 0, 0]
    (sh, sw), (dh, dw) = op.options["stride"], op.options.get("dilation", (1, 1))
    return [*same_pads(in_hw[0], kernel[0], sh, dh), *same_pads(in_hw[1], kernel[1], sw, dw)]


def _to_nchw_const(value: np.ndarray) -> np.ndarray:
    """Broadcast a constant operand to rank 4 (NHWC rules), then transpose to NCHW."""
    if value.ndim > 4:
        raise ValueError(f"constant operand of rank {value.ndim} is not supported")
    return value.reshape((1,) * (4 - value.ndim) + value.shape).transpose(0, 3, 1, 2)


def _build_op(graph: Graph, op: Op, exact_resize: bool) -> nn.Layer:
    t_in = graph.tensors[op.inputs[0]]
    t_out = graph.tensors[op.outputs[0]]
    name = f"{op.type} (op #{op.index}, output {t_out.name!r})"
    if op.type in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        w, b = _const(graph, op.inputs[1]), _const(graph, op.inputs[2] if len(op.inputs) > 2 else -1)
        if w is None:
            raise ValueError(f"{name}: non-constant weights are not supported")
        if op.type == "CONV_2D":  # OHWI -> OIHW
            weight, groups = w.transpose(0, 3, 1, 2), 1
            if w.shape[3] != t_in.shape[3]:
                raise ValueError(f"{name}: grouped CONV_2D is not supported")
        else:  # 1HW(C*M) -> (C*M)1HW, one group per input channel
            weight, groups = w.transpose(3, 0, 1, 2), t_in.shape[3]
        pads = _pads(op, _hw(t_in), (w.shape[1], w.shape[2]))
        return Conv(weight, b, op.options["stride"], pads, op.options["dilation"], groups, op.options["activation"])
    if op.type == "CUSTOM:Convolution2DTransposeBias":
        w, b = _const(graph, op.inputs[1]), _const(graph, op.inputs[2] if len(op.inputs) > 2 else -1)
        if w is None:
            raise ValueError(f"{name}: non-constant weights are not supported")
        (sh, sw), (ih, iw), (oh, ow) = op.options["stride"], _hw(t_in), _hw(t_out)
        full_h, full_w = (ih - 1) * sh + w.shape[1], (iw - 1) * sw + w.shape[2]
        if oh > full_h or ow > full_w:
            raise ValueError(f"{name}: output larger than the full transposed convolution")
        # TFLite pads the equivalent forward conv 'SAME'-style: crop (total // 2) at top/left
        crop = [(full_h - oh) // 2, (full_w - ow) // 2, oh, ow, full_h, full_w]
        return TransposeConv(w.transpose(3, 0, 1, 2), b, (sh, sw), crop)  # OHWI -> IOHW
    if op.type in ACTIVATION_OPS:
        return Activation(op.type)
    if op.type == "AVERAGE_POOL_2D":
        kernel, hw = op.options["filter"], _hw(t_in)
        if op.options["padding"] == "VALID" and tuple(kernel) == hw:
            return GlobalAvgPool(hw, op.options["activation"])
        return AvgPool(kernel, op.options["stride"], _pads(op, hw, kernel), op.options["activation"])
    if op.type == "PRELU":
        alpha = _const(graph, op.inputs[1])
        if alpha is None or len(t_in.shape) != 4:
            raise ValueError(f"{name}: only a constant slope on a 4-D activation is supported")
        return PRelu(_to_nchw_const(alpha))
    if op.type == "MAX_POOL_2D":
        kernel, hw = op.options["filter"], _hw(t_in)
        return MaxPool(kernel, op.options["stride"], _pads(op, hw, kernel), op.options["activation"])
    if op.type == "PAD":
        padding = _const(graph, op.inputs[1])
        if padding is None or len(op.inputs) > 2:
            raise ValueError(f"{name}: only constant zero padding is supported")
        order = [0, 3, 1, 2] if len(t_in.shape) == 4 else list(range(len(t_in.shape)))  # NHWC rows -> NCHW
        return Pad([int(v) for axis in order for v in padding[axis]])
    if op.type == "RESHAPE":
        shape = op.options.get("new_shape") or t_out.shape
        if len(shape) != len(t_out.shape) or any(d not in (-1, o) for d, o in zip(shape, t_out.shape, strict=True)):
            raise ValueError(f"{name}: new shape {shape} does not match the output {t_out.shape}")
        return Reshape(t_out.shape, from_nchw=len(t_in.shape) == 4, to_nchw=len(t_out.shape) == 4)
    if op.type == "CONCATENATION":
        rank, axis = len(t_out.shape), op.options["axis"]
        axis = axis % rank
        return Concat([0, 2, 3, 1][axis] if rank == 4 else axis, op.options["activation"])
    if op.type in ("ADD", "MUL"):
        lhs, rhs = (graph.tensors[i] for i in op.inputs[:2])
        if lhs.is_const and rhs.is_const:
            raise ValueError(f"{name}: both operands are constant")
        const = lhs.data if lhs.is_const else rhs.data
        act = graph.tensors[op.inputs[1] if lhs.is_const else op.inputs[0]]
        if len(act.shape) != 4 or (not lhs.is_const and not rhs.is_const and len(lhs.shape) != len(rhs.shape)):
            raise ValueError(f"{name}: only 4-D NHWC operands are supported")
        return Binary(op.type, op.options["activation"], None if const is None else _to_nchw_const(const))
    if op.type == "RESIZE_BILINEAR":
        if not graph.tensors[op.inputs[1]].is_const:
            raise ValueError(f"{name}: the output size must be a constant")
        opts = op.options
        return ResizeBilinear(
            _hw(t_in), _hw(t_out), t_in.shape[3], opts["align_corners"], opts["half_pixel_centers"], exact_resize
        )
    raise ValueError(f"unsupported TFLite op type: {op.type}")
