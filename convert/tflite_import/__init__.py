"""Import a float TFLite model (e.g. MediaPipe Selfie Segmentation) as a Paddle inference model.

Usage::

    from convert.tflite_import import import_tflite
    import_tflite("selfie_segmentation.tflite", "export_dir")  # -> export_dir/model.json + model.pdiparams
"""

from __future__ import annotations

from pathlib import Path

import paddle

from .graph import SUPPORTED_OPS, Graph, read_tflite
from .model import TFLiteNet

__all__ = ["SUPPORTED_OPS", "Graph", "TFLiteNet", "build_layer", "import_tflite", "read_tflite"]

INPUT_NAME = "image"


def build_layer(tflite_path: str | Path, exact_resize: bool = True) -> TFLiteNet:
    """Parse ``tflite_path`` and return an eval-mode NCHW :class:`TFLiteNet`."""
    net = TFLiteNet(read_tflite(tflite_path), exact_resize)
    net.eval()
    return net


def import_tflite(
    tflite_path: str | Path, out_dir: str | Path, input_name: str = INPUT_NAME, exact_resize: bool = True
) -> Path:
    """Convert ``tflite_path`` and ``paddle.jit.save`` it as ``<out_dir>/model``.

    The saved program takes one float32 NCHW input ``input_name`` with a dynamic
    batch (``[None, C, H, W]``) and returns the model output transposed to NCHW.
    ``exact_resize=False`` replays half-pixel RESIZE_BILINEAR with ``F.interpolate``
    (faster; avoid it on Paddle versions whose oneDNN interpolate is broken).
    Returns the path prefix (``<out_dir>/model``). Raises ``ValueError`` for
    unsupported op types or layouts.
    """
    graph = read_tflite(tflite_path)
    _, h, w, c = graph.tensors[graph.inputs[0]].shape
    net = TFLiteNet(graph, exact_resize)
    net.eval()
    spec = paddle.static.InputSpec([None, c, h, w], "float32", input_name)
    static_net = paddle.jit.to_static(net, input_spec=[spec], full_graph=True)
    prefix = Path(out_dir) / "model"
    prefix.parent.mkdir(parents=True, exist_ok=True)
    paddle.jit.save(static_net, str(prefix))
    return prefix
