"""PaddleSeg exports made the way users make them, for fidelity tests and the parity report.

    python -m benchmarks.paddleseg_exports OUT [--format pir|legacy|both] [--kinds a,b] [--steps N]

Each export is a PaddleSeg 2.8 model class (random weights, seeded; no download is possible) wrapped as
`tools/export.py` wraps it (`paddleseg.deploy.export.WrappedModel`, eval mode, `PADDLESEG_EXPORT_STAGE`),
saved with `paddle.jit.save` and an unnamed `InputSpec` (so the feed is `x`), beside a `deploy.yaml` written
as PaddleSeg's exporter writes it (`yaml.dump` of its `Deploy` mapping). One more model, `trained_humanseg`,
is trained here for a few hundred steps on synthetic shapes so that its masks mean something.

    OUT/<kind>-pir/      model.json + model.pdiparams + deploy.yaml   (Paddle 3's PIR program)
    OUT/<kind>-legacy/   model.pdmodel + model.pdiparams + deploy.yaml (FLAGS_enable_pir_api=0)

The legacy format needs FLAGS_enable_pir_api=0 before paddle is imported, so each format is built in its
own process (build_exports() runs them). Paddle 3.2's dy2static cannot write PP-LiteSeg or BiSeNetV2 in the
legacy format ("must be Value, but got Variable"); those are skipped there with that reason on stderr.
Needs paddleseg 2.8.0 (`pip install paddleseg==2.8.0 --no-deps`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

FORMATS = ("pir", "legacy")
_IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


@dataclass(frozen=True)
class ExportKind:
    """One export: the model, its `--input_shape`, `--output_op` and its val transforms (deploy.yaml)."""

    description: str
    input_shape: list[int | None]
    output_op: str
    transforms: list[dict[str, Any]]
    num_classes: int
    trained: bool = False
    legacy_schema: bool = False  # legacy format only: deploy.yaml as PaddleSeg <= 2.6 wrote it (3 keys)
    extra: dict[str, Any] = field(default_factory=dict)


DYNAMIC: list[int | None] = [None, 3, None, None]
KINDS: dict[str, ExportKind] = {
    "pp_liteseg_stdc1": ExportKind(
        "PP-LiteSeg, STDC1 backbone, dynamic input (the Cityscapes export: Normalize only)",
        DYNAMIC, "argmax", [{"type": "Normalize"}], 19,
    ),
    "pp_liteseg_stdc1_fixed": ExportKind(
        "PP-LiteSeg, STDC1, `--input_shape 1 3 512 512`",
        [1, 3, 512, 512], "argmax",
        [{"type": "Resize", "target_size": [512, 512]}, {"type": "Normalize"}], 2,
    ),
    "deeplabv3p_resnet18": ExportKind(
        "DeepLabV3+, ResNet18_vd backbone, ResizeByShort + ImageNet Normalize",
        DYNAMIC, "argmax",
        [{"type": "ResizeByShort", "short_size": 256, "max_size": 448}, {"type": "Normalize", **_IMAGENET}], 3,
    ),
    "bisenetv2": ExportKind(
        "BiSeNetV2, LimitLong + Padding to 512x512",
        DYNAMIC, "argmax",
        [{"type": "LimitLong", "max_long": 512, "min_long": 256},
         {"type": "Padding", "target_size": [512, 512]}, {"type": "Normalize"}], 4,
    ),
    "pp_humanseg_lite": ExportKind(
        "PP-HumanSeg-Lite portrait net, 2 classes, `--output_op softmax`",
        DYNAMIC, "softmax", [{"type": "Resize", "target_size": [192, 192]}, {"type": "Normalize"}], 2,
        legacy_schema=True,
    ),
    "trained_humanseg": ExportKind(
        "PP-HumanSeg-Lite trained on synthetic shapes (3 classes), Resize keep_ratio + size_divisor",
        DYNAMIC, "argmax",
        [{"type": "Resize", "target_size": [256, 192], "keep_ratio": True, "size_divisor": 32},
         {"type": "Normalize"}], 3, trained=True,
    ),
}  # fmt: skip


def export_name(kind: str, fmt: str) -> str:
    return f"{kind}-{fmt}"


def _paddleseg() -> Any:
    os.environ.setdefault("PADDLESEG_EXPORT_STAGE", "True")  # SyncBatchNorm -> BatchNorm2D, as tools/export.py
    try:
        import paddleseg
    except ImportError as exc:
        raise SystemExit(f"needs paddleseg 2.8.0: pip install paddleseg==2.8.0 --no-deps ({exc})") from exc
    return paddleseg


def build_net(kind: str, seed: int = 0) -> Any:
    """The PaddleSeg model for `kind`, with seeded random weights."""
    import paddle

    _paddleseg()
    from paddleseg import models
    from paddleseg.models import backbones

    spec = KINDS[kind]
    paddle.seed(seed)
    np.random.seed(seed)
    n = spec.num_classes
    if kind.startswith("pp_liteseg"):
        return models.PPLiteSeg(num_classes=n, backbone=backbones.STDC1(pretrained=None), pretrained=None)
    if kind == "deeplabv3p_resnet18":
        return models.DeepLabV3P(num_classes=n, backbone=backbones.ResNet18_vd(pretrained=None), pretrained=None)
    if kind == "bisenetv2":
        return models.BiSeNetV2(num_classes=n, pretrained=None)
    return models.PPHumanSegLite(num_classes=n, pretrained=None)


def save_export(net: Any, spec: ExportKind, out: Path, fmt: str = "pir") -> None:
    """What `tools/export.py` does: wrap, eval, to_static with an unnamed InputSpec, jit.save, deploy.yaml."""
    import paddle

    _paddleseg()
    from paddleseg.deploy.export import WrappedModel

    model = WrappedModel(net, spec.output_op) if spec.output_op != "none" else net
    model.eval()
    input_spec = [paddle.static.InputSpec(shape=list(spec.input_shape), dtype="float32")]  # it edits the list
    static = paddle.jit.to_static(model, input_spec=input_spec, full_graph=True)
    out.mkdir(parents=True, exist_ok=True)
    paddle.jit.save(static, str(out / "model"))
    deploy: dict[str, Any] = {"model": "model.pdmodel", "params": "model.pdiparams", "transforms": spec.transforms}
    if not (spec.legacy_schema and fmt == "legacy"):
        deploy["input_shape"] = spec.input_shape
        deploy["output_op"] = spec.output_op
        deploy["output_dtype"] = "int32" if spec.output_op == "argmax" else "float32"
    with open(out / "deploy.yaml", "w", encoding="utf-8") as f:
        yaml.dump({"Deploy": deploy}, f)


def synthetic_batch(
    rng: np.random.Generator, n: int, size: int | tuple[int, int] = 96
) -> tuple[np.ndarray, np.ndarray]:
    """n RGB float images in [0, 255] (N x 3 x H x W) of reddish discs (class 1) and bluish boxes (class 2)
    on noisy grey-ish ground, with their labels (N x H x W)."""
    import cv2

    height, width = (size, size) if isinstance(size, int) else size
    short = min(height, width)
    images = np.empty((n, height, width, 3), np.float32)
    labels = np.zeros((n, height, width), np.int64)
    for i in range(n):
        ground = rng.integers(60, 200, 3).astype(np.float32)
        image = np.clip(ground + rng.normal(0, 20, (height, width, 3)), 0, 255).astype(np.uint8)
        label = np.zeros((height, width), np.uint8)
        for cls in rng.permutation([1, 2])[: rng.integers(1, 3)]:
            bright, dim = int(rng.integers(200, 256)), [int(v) for v in rng.integers(0, 90, 2)]
            colour = (dim[0], dim[1], bright) if cls == 1 else (bright, dim[0], dim[1])  # BGR drawing, RGB later
            cx, cy = int(rng.integers(width // 5, 4 * width // 5)), int(rng.integers(height // 5, 4 * height // 5))
            r = int(rng.integers(short // 10, short // 4))
            if cls == 1:
                cv2.circle(image, (cx, cy), r, colour, -1)
                cv2.circle(label, (cx, cy), r, 1, -1)
            else:
                cv2.rectangle(image, (cx - r, cy - r), (cx + r, cy + r), colour, -1)
                cv2.rectangle(label, (cx - r, cy - r), (cx + r, cy + r), 2, -1)
        images[i], labels[i] = image[:, :, ::-1], label
    return images.transpose(0, 3, 1, 2), labels


def train(net: Any, steps: int, seed: int = 0, log: Callable[[str], None] = print) -> float:
    """Train on synthetic shapes (inputs normalised as deploy.yaml's Normalize does); returns held-out pixel acc."""
    import paddle
    import paddle.nn.functional as F

    rng = np.random.default_rng(seed)
    optimizer = paddle.optimizer.Adam(learning_rate=1e-2, parameters=net.parameters())
    net.train()
    for step in range(steps):
        images, labels = synthetic_batch(rng, 8)
        logits = net(paddle.to_tensor(images / 127.5 - 1.0))[0]
        loss = F.cross_entropy(logits, paddle.to_tensor(labels[:, None]), axis=1)
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        if step % 100 == 0:
            log(f"step {step}: loss {float(loss):.3f}")
    net.eval()
    images, labels = synthetic_batch(np.random.default_rng(seed + 1), 16)
    with paddle.no_grad():
        pred = net(paddle.to_tensor(images / 127.5 - 1.0))[0].argmax(axis=1).numpy()
    return float((pred == labels).mean())


def build_format(out: Path, fmt: str, kinds: Sequence[str], steps: int) -> None:
    """Build every kind in one format, in this process (FLAGS_enable_pir_api must already be set for legacy)."""
    import paddle

    weights = out / "_trained" / "model.pdparams"
    for kind in kinds:
        spec = KINDS[kind]
        net = build_net(kind)
        if spec.trained:
            if weights.is_file():
                net.set_state_dict(paddle.load(str(weights)))
            else:
                accuracy = train(net, steps, log=lambda m: print(m, file=sys.stderr))
                weights.parent.mkdir(parents=True, exist_ok=True)
                paddle.save(net.state_dict(), str(weights))
                (weights.parent / "accuracy.txt").write_text(f"{accuracy:.4f}\n")
        target = out / export_name(kind, fmt)
        try:
            save_export(net, spec, target, fmt)
        except Exception as exc:  # dy2static raises assorted types; the legacy writer fails on some nets
            if fmt != "legacy":
                raise
            shutil.rmtree(target, ignore_errors=True)
            reason = " ".join(str(exc).split())[-300:]
            print(f"{kind}: this Paddle cannot write it in the legacy format: {reason}", file=sys.stderr)


def build_exports(out: Path, kinds: Sequence[str] = tuple(KINDS), formats: Sequence[str] = FORMATS,
                  steps: int = 300, python: str = sys.executable) -> dict[str, Path]:  # fmt: skip
    """Build the exports (one child process per format); returns {"<kind>-<format>": dir}."""
    out = Path(out)
    for fmt in formats:
        env = dict(os.environ, FLAGS_enable_pir_api="0" if fmt == "legacy" else "1")
        cmd = [python, "-m", "benchmarks.paddleseg_exports", str(out), "--format", fmt,
               "--kinds", ",".join(kinds), "--steps", str(steps), "--in-process"]  # fmt: skip
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False,
                              cwd=Path(__file__).resolve().parent.parent)  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"building the {fmt} exports failed:\n{proc.stderr[-3000:]}")
    built = {export_name(k, f): out / export_name(k, f) for k in kinds for f in formats}
    return {name: path for name, path in built.items() if (path / "deploy.yaml").is_file()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.paddleseg_exports", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("out", type=Path)
    parser.add_argument("--format", choices=[*FORMATS, "both"], default="both")
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated; default all: {', '.join(KINDS)}")
    parser.add_argument("--steps", type=int, default=300, help="training steps of trained_humanseg")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        parser.error(f"unknown kinds {unknown}; known: {', '.join(KINDS)}")
    formats = FORMATS if args.format == "both" else (args.format,)
    if args.in_process:
        if len(formats) != 1:
            parser.error("--in-process builds one format")
        build_format(args.out, formats[0], kinds, args.steps)
    else:
        for name, path in build_exports(args.out, kinds, formats, args.steps).items():
            print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
