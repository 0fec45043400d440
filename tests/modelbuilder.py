"""Build tiny real Paddle inference models for tests: `python tests/modelbuilder.py KIND OUT_DIR`.

Runs as a script (in a child process) because legacy formats need FLAGS_enable_pir_api=0 before paddle
is imported. Weights are seeded so every build is identical.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml

LEGACY_KINDS = ("legacy_multi", "fluid", "legacy_adaptive")
KINDS = ("pir_interp", "pir_softmax", "adaptive", "adaptive_static", "classifier", *LEGACY_KINDS)


def _deploy(out: Path, model: str, output_op: str | None, transforms: list[dict], **extra: object) -> None:
    deploy: dict[str, object] = {"model": model, "params": "model.pdiparams", "transforms": transforms}
    if output_op:
        deploy["output_op"] = output_op
    deploy.update(extra)
    (out / "deploy.yaml").write_text(yaml.safe_dump({"Deploy": deploy}))


def build_dygraph(kind: str, out: Path) -> None:
    import paddle
    import paddle.nn as nn
    import paddle.nn.functional as F

    paddle.seed(7)

    class Net(nn.Layer):
        def __init__(self, classes: int, adaptive: bool) -> None:
            super().__init__()
            self.stem = nn.Conv2D(3, 8, 3, stride=2, padding=1)
            self.head = nn.Conv2D(8, classes, 1)
            self.adaptive = adaptive

        def forward(self, x: paddle.Tensor) -> paddle.Tensor:
            y = F.relu(self.stem(x))
            if kind == "classifier":  # an image classifier: N x classes scores, not a segmentation map
                return F.softmax(paddle.flatten(F.adaptive_avg_pool2d(self.head(y), 1), 1), axis=1)
            if self.adaptive:
                y = y + F.interpolate(F.adaptive_avg_pool2d(y, 2), size=paddle.shape(y)[2:], mode="bilinear")
            y = F.interpolate(self.head(y), size=paddle.shape(x)[2:], mode="bilinear", align_corners=False)
            if kind == "pir_softmax":
                return F.softmax(y, axis=1)
            return paddle.argmax(y, axis=1, dtype="int32")

    classes = 2 if kind == "pir_softmax" else 3
    net = Net(classes, adaptive=kind.startswith("adaptive"))
    net.eval()
    shape = [None, 3, 64, 64] if kind == "adaptive_static" else [None, 3, None, None]
    static = paddle.jit.to_static(
        net, input_spec=[paddle.static.InputSpec(shape, "float32", name="x")], full_graph=True
    )
    paddle.jit.save(static, str(out / "model"))
    transforms = [{"type": "Resize", "target_size": [64, 48]}, {"type": "Normalize"}]
    if kind == "pir_softmax":
        _deploy(out, "model.pdmodel", "softmax", transforms, class_names=["background", "person"])
    elif kind == "adaptive_static":
        _deploy(
            out,
            "model.pdmodel",
            "argmax",
            [{"type": "Resize", "target_size": [64, 64]}, {"type": "Normalize"}],
            input_shape=[None, 3, 64, 64],
        )
    else:
        _deploy(out, "model.pdmodel", "argmax", transforms)


def build_legacy(kind: str, out: Path) -> None:
    import paddle
    import paddle.nn.functional as F

    paddle.enable_static()
    paddle.seed(7)
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main, startup):
        x = paddle.static.data("x", [-1, 3, -1, -1], "float32")
        y = paddle.nn.Conv2D(3, 4, 3, padding=1)(x)
        if kind == "legacy_adaptive":  # adaptive pooling on a dynamic H, W: no ONNX export from a legacy program
            y = y + F.interpolate(F.adaptive_avg_pool2d(y, 2), size=paddle.shape(y)[2:], mode="bilinear")
        y = F.interpolate(y, scale_factor=0.5, mode="bilinear")
        y = F.interpolate(y, scale_factor=2.0, mode="bilinear")
        labels = paddle.argmax(y, axis=1)
        probs = F.softmax(y, axis=1)
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    if kind == "legacy_multi":
        paddle.static.save_inference_model(str(out / "model"), [x], [probs, labels], exe, program=main)
        return
    if kind == "legacy_adaptive":
        paddle.static.save_inference_model(str(out / "model"), [x], [labels], exe, program=main)
        _deploy(out, "model.pdmodel", "argmax", [{"type": "Normalize"}])
        return
    program = paddle.static.normalize_program(main, [x], [labels, probs])
    (out / "__model__").write_bytes(program.desc.serialize_to_string())
    params = [v for v in program.list_vars() if v.persistable and v.name not in ("feed", "fetch")]
    paddle.static.io.save_vars(exe, str(out), program, vars=params, filename=None)


if __name__ == "__main__":
    kind, target = sys.argv[1], Path(sys.argv[2])
    if kind not in KINDS:
        sys.exit(f"unknown kind {kind}; one of {KINDS}")
    target.mkdir(parents=True, exist_ok=True)
    if kind in LEGACY_KINDS:
        os.environ["FLAGS_enable_pir_api"] = "0"  # read when paddle is first imported, inside build_legacy
        build_legacy(kind, target)
    else:
        build_dygraph(kind, target)
