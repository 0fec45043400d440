"""Paddle layers replaying TFLite ops in NCHW layout.

All 4-D activations are kept NCHW; TFLite shapes (NHWC) are only used at
build time to resolve static padding and resize sizes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import paddle
import paddle.nn.functional as F
from paddle import nn


def same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow 'SAME' padding for one spatial dim: (before, after); extra goes after."""
    out = -(-size // stride)
    eff_k = (kernel - 1) * dilation + 1
    total = max((out - 1) * stride + eff_k - size, 0)
    return total // 2, total - total // 2


def activate(x: paddle.Tensor, name: str) -> paddle.Tensor:
    """Apply a TFLite fused activation by name."""
    if name == "NONE":
        return x
    if name == "RELU":
        return F.relu(x)
    if name == "RELU6":
        return F.relu6(x)
    if name == "RELU_N1_TO_1":
        return paddle.clip(x, -1.0, 1.0)
    if name == "TANH":
        return paddle.tanh(x)
    raise ValueError(f"unsupported fused activation {name!r}")


class _WithParams(nn.Layer):
    def _param(self, value: np.ndarray) -> paddle.Tensor:
        value = np.ascontiguousarray(value, dtype=np.float32)
        p = self.create_parameter(list(value.shape), dtype="float32", default_initializer=nn.initializer.Assign(value))
        p.stop_gradient = True
        return p


class Conv(_WithParams):
    """CONV_2D / DEPTHWISE_CONV_2D with explicit (possibly asymmetric) padding.

    ``weight`` is OIHW (already transposed), ``pads`` is (top, bottom, left, right).
    """

    def __init__(
        self,
        weight: np.ndarray,
        bias: np.ndarray | None,
        stride: Sequence[int],
        pads: Sequence[int],
        dilation: Sequence[int],
        groups: int,
        activation: str,
    ) -> None:
        super().__init__()
        self.weight = self._param(weight)
        self.bias = self._param(bias) if bias is not None else None
        self.stride = list(stride)
        top, bottom, left, right = pads
        self.padding: int | list[int] = top if len({top, bottom, left, right}) == 1 else [top, bottom, left, right]
        self.dilation = list(dilation)
        self.groups = groups
        self.activation = activation

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        return activate(y, self.activation)


class TransposeConv(_WithParams):
    """Transposed conv (weight IOHW) followed by a static crop to ``out_hw``."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None, stride: Sequence[int], crop: Sequence[int]) -> None:
        super().__init__()
        self.weight = self._param(weight)
        self.bias = self._param(bias) if bias is not None else None
        self.stride = list(stride)
        self.crop = list(crop)  # top, left, out_h, out_w, full_h, full_w

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = F.conv2d_transpose(x, self.weight, self.bias, stride=self.stride)
        top, left, h, w, full_h, full_w = self.crop
        if (h, w) != (full_h, full_w):
            y = y[:, :, top : top + h, left : left + w]
        return y


#: Stand-alone elementwise TFLite ops; TFLite's HARD_SWISH is x * relu6(x + 3) / 6, as is F.hardswish.
ACTIVATION_OPS = {"HARD_SWISH": F.hardswish, "RELU": F.relu, "RELU6": F.relu6, "LOGISTIC": F.sigmoid}


class Activation(nn.Layer):
    """Stand-alone elementwise activation (one of :data:`ACTIVATION_OPS`)."""

    def __init__(self, op_type: str) -> None:
        super().__init__()
        self.fn = ACTIVATION_OPS[op_type]

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.fn(x)


class GlobalAvgPool(nn.Layer):
    """AVERAGE_POOL_2D whose window covers the whole [h, w] feature map.

    Pools rows first, then the column: two short fp32 sums stay ~10x closer to
    TFLite than one naive sum over h*w elements, and both run as oneDNN pools.
    """

    def __init__(self, hw: Sequence[int], activation: str) -> None:
        super().__init__()
        self.h, self.w = hw
        self.activation = activation

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = F.avg_pool2d(F.avg_pool2d(x, [1, self.w]), [self.h, 1])
        return activate(y, self.activation)


class _Pool(nn.Layer):
    """A 2-D pooling with TFLite's kernel, stride, explicit pads and fused activation."""

    def __init__(self, kernel: Sequence[int], stride: Sequence[int], pads: Sequence[int], activation: str) -> None:
        super().__init__()
        self.kernel, self.stride, self.pads = list(kernel), list(stride), list(pads)
        self.activation = activation

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return activate(self._pool(x), self.activation)

    def _pool(self, x: paddle.Tensor) -> paddle.Tensor:
        raise NotImplementedError


class AvgPool(_Pool):
    """General AVERAGE_POOL_2D; padded cells are excluded from the mean, as in TFLite."""

    def _pool(self, x: paddle.Tensor) -> paddle.Tensor:
        return F.avg_pool2d(x, self.kernel, self.stride, self.pads, exclusive=True)


class PRelu(_WithParams):
    """PRELU with a constant slope per channel (given NCHW-broadcastable)."""

    def __init__(self, alpha: np.ndarray) -> None:
        super().__init__()
        self.alpha = self._param(alpha)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return F.relu(x) - self.alpha * F.relu(-x)


class MaxPool(_Pool):
    """MAX_POOL_2D; padded cells never win, as in TFLite."""

    def _pool(self, x: paddle.Tensor) -> paddle.Tensor:
        return F.max_pool2d(x, self.kernel, self.stride, self.pads)


class Pad(nn.Layer):
    """PAD with zeros; ``pads`` lists (before, after) for every dimension of the layout the tensor is kept in."""

    def __init__(self, pads: Sequence[int]) -> None:
        super().__init__()
        self.pads = list(pads)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return F.pad(x, self.pads, mode="constant", value=0.0)


class Reshape(nn.Layer):
    """RESHAPE of the TFLite (NHWC) view: 4-D NCHW inputs are read as NHWC, a 4-D result goes back to NCHW. The
    batch dimension stays dynamic."""

    def __init__(self, shape: Sequence[int], from_nchw: bool, to_nchw: bool) -> None:
        super().__init__()
        self.shape = [-1, *shape[1:]]
        self.from_nchw, self.to_nchw = from_nchw, to_nchw

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if self.from_nchw:
            x = paddle.transpose(x, [0, 2, 3, 1])
        y = paddle.reshape(x, self.shape)
        return paddle.transpose(y, [0, 3, 1, 2]) if self.to_nchw else y


class Concat(nn.Layer):
    """CONCATENATION along ``axis`` of the tensors as they are kept (NCHW for 4-D)."""

    def __init__(self, axis: int, activation: str) -> None:
        super().__init__()
        self.axis, self.activation = axis, activation

    def forward(self, *xs: paddle.Tensor) -> paddle.Tensor:
        return activate(paddle.concat(list(xs), axis=self.axis), self.activation)


class Binary(_WithParams):
    """ADD / MUL of two activations, or of an activation and a constant (given in NCHW)."""

    def __init__(self, op_type: str, activation: str, const: np.ndarray | None = None) -> None:
        super().__init__()
        self.is_add = op_type == "ADD"
        self.activation = activation
        self.const = self._param(const) if const is not None else None

    def forward(self, a: paddle.Tensor, b: paddle.Tensor | None = None) -> paddle.Tensor:
        other = self.const if b is None else b
        assert other is not None, "a Binary layer without a constant takes two inputs"
        y = a + other if self.is_add else a * other
        return activate(y, self.activation)


def _phase_weights(scale: int, half_pixel: bool) -> np.ndarray:
    """[scale, 3] weights on (x[i-1], x[i], x[i+1]) for output ``scale*i + p``.

    Equals TFLite's per-axis bilinear weights for an integer upscale without
    align_corners once the input is edge-replicated by one cell (TFLite clamps
    out-of-range source indices to the border).
    """
    w = np.zeros((scale, 3), dtype=np.float64)
    for p in range(scale):
        f = (p + 0.5) / scale - 0.5 if half_pixel else p / scale
        if f < 0:
            w[p, 0], w[p, 1] = -f, 1.0 + f
        else:
            w[p, 1], w[p, 2] = 1.0 - f, f
    return w


def _lerp_indices(
    out_size: int, in_size: int, align_corners: bool, half_pixel: bool
) -> tuple[list[int], list[int], np.ndarray]:
    """Per output index: TFLite's (lower, upper) source indices and the weight of the upper one."""
    scale = (in_size - 1) / (out_size - 1) if align_corners and out_size > 1 else in_size / out_size
    src = (np.arange(out_size) + 0.5) * scale - 0.5 if half_pixel else np.arange(out_size) * scale
    lo = np.maximum(np.floor(src), 0).astype(int)
    hi = np.minimum(np.ceil(src), in_size - 1).astype(int)
    return lo.tolist(), hi.tolist(), (src - lo).astype(np.float32)


class ResizeBilinear(_WithParams):
    """RESIZE_BILINEAR with TFLite semantics, in one of three forms.

    * integer upscale without align_corners (``exact``): slice/concat edge
      replication, one depthwise 3x3 conv producing every output phase, and a
      reshape/transpose interleave;
    * half-pixel without align_corners and ``exact=False``: ``F.interpolate``;
    * anything else: per-axis gather + lerp. (Paddle 3.2.2's oneDNN
      bilinear_interp is only right for the half-pixel mode.)
    """

    def __init__(
        self,
        in_hw: Sequence[int],
        out_hw: Sequence[int],
        channels: int,
        align_corners: bool,
        half_pixel: bool,
        exact: bool = True,
    ) -> None:
        super().__init__()
        (h, w), (oh, ow) = in_hw, out_hw
        self.in_hw, self.out_hw, self.channels = [h, w], [oh, ow], channels
        self.scale = [oh // h, ow // w]
        if exact and not align_corners and oh % h == 0 and ow % w == 0:
            self.mode = "phases"
            sh, sw = self.scale
            wh, ww = _phase_weights(sh, half_pixel), _phase_weights(sw, half_pixel)
            kernels = np.einsum("ai,bj->abij", wh, ww).reshape(sh * sw, 1, 3, 3)
            self.weight = self._param(np.tile(kernels, (channels, 1, 1, 1)))
        elif not exact and half_pixel and not align_corners:
            self.mode = "interpolate"
        else:
            self.mode = "lerp"
            self.rows = _lerp_indices(oh, h, align_corners, half_pixel)
            self.cols = _lerp_indices(ow, w, align_corners, half_pixel)
            self.frac_h = self._param(self.rows[2].reshape(1, 1, oh, 1))
            self.frac_w = self._param(self.cols[2].reshape(1, 1, 1, ow))

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if self.mode == "interpolate":
            return F.interpolate(x, size=self.out_hw, mode="bilinear", align_corners=False, align_mode=0)
        if self.mode == "lerp":
            x = _lerp(x, 2, self.rows[0], self.rows[1], self.frac_h)
            return _lerp(x, 3, self.cols[0], self.cols[1], self.frac_w)
        c, (h, w), (sh, sw) = self.channels, self.in_hw, self.scale
        x = paddle.concat([x[:, :, :1], x, x[:, :, h - 1 :]], axis=2)
        x = paddle.concat([x[:, :, :, :1], x, x[:, :, :, w - 1 :]], axis=3)
        y = F.conv2d(x, self.weight, groups=c)  # [N, C*sh*sw, H, W], channel = c*sh*sw + ph*sw + pw
        y = paddle.reshape(y, [-1, c, sh, sw, h, w]).transpose([0, 1, 4, 2, 5, 3])
        return paddle.reshape(y, [-1, c, h * sh, w * sw])


def _lerp(x: paddle.Tensor, axis: int, lo: list[int], hi: list[int], frac: paddle.Tensor) -> paddle.Tensor:
    x_lo = paddle.index_select(x, paddle.to_tensor(lo, dtype="int64"), axis=axis)
    x_hi = paddle.index_select(x, paddle.to_tensor(hi, dtype="int64"), axis=axis)
    return x_lo + (x_hi - x_lo) * frac
