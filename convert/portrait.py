"""Build the bundled ``portrait`` model from MediaPipe Selfie Segmentation.

``python -m convert.portrait [--wheel PATH] [--out serving_models/portrait]``

Takes ``selfie_segmentation.tflite`` out of the mediapipe wheel (downloaded with
pip unless ``--wheel`` is given), checks its sha256, imports it into a
PaddleSeg-style export dir (model.json, model.pdiparams, deploy.yaml) and runs
the SegServing converter on it. The output dir is replaced atomically and holds
``source/``, ``serving_server/``, ``serving_client/``, ``NOTICE`` and ``LICENSE``.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

MEDIAPIPE_VERSION = "0.10.21"
TFLITE_MEMBER = "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite"
TFLITE_SHA256 = "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"
TFLITE_NAME = "selfie_segmentation.tflite"
MODEL_NAME = "portrait"
DEFAULT_OUT = Path("serving_models") / MODEL_NAME
# Any mediapipe wheel carries the same .tflite; pin one so every build records the same source.
PIP_PLATFORM = ("--platform", "manylinux_2_28_x86_64", "--python-version", "3.11", "--implementation", "cp")

# MediaPipe's CPU graph: warpAffine of the 8-bit image to 256x256 (no half-pixel offset), RGB / 255, sigmoid.
DEPLOY_YAML = """\
Deploy:
  model: model.json
  params: model.pdiparams
  input_shape: [null, 3, 256, 256]
  output_op: sigmoid
  output_dtype: float32
  class_names: [background, person]
  pixel_dtype: uint8
  transforms:
  - type: Resize
    target_size: [256, 256]
    interp: LINEAR
    pixel_center: corner
  - type: Normalize
    mean: [0.0, 0.0, 0.0]
    std: [1.0, 1.0, 1.0]
"""


@dataclass(frozen=True)
class WheelSource:
    """What the build takes from the mediapipe wheel."""

    wheel_name: str
    version: str
    tflite: bytes
    sha256: str
    license_text: str


def download_wheel(dest: Path) -> Path:
    """``pip download`` the pinned mediapipe wheel into ``dest`` and return its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", *PIP_PLATFORM]
    cmd += ["-d", str(dest), f"mediapipe=={MEDIAPIPE_VERSION}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = sorted(dest.glob("mediapipe-*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = " ".join((proc.stderr or proc.stdout).split())[-300:]
        raise ValueError(f"pip download of mediapipe=={MEDIAPIPE_VERSION} failed: {tail} (pass --wheel PATH instead)")
    return wheels[0]


def read_wheel(wheel: Path, expected_sha256: str = TFLITE_SHA256, member: str = TFLITE_MEMBER) -> WheelSource:
    """Extract the .tflite ``member`` and the license from ``wheel``; ``ValueError`` if it is not the expected
    model."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            names = zf.namelist()
            if member not in names:
                raise ValueError(f"{wheel.name} has no {member}")
            tflite = zf.read(member)
            licenses = [n for n in names if re.fullmatch(r"mediapipe-[^/]+\.dist-info/LICENSE(\.txt)?", n)]
            if not licenses:
                raise ValueError(f"{wheel.name} has no mediapipe-*.dist-info/LICENSE")
            license_text = zf.read(licenses[0]).decode("utf-8")
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"cannot read wheel {wheel}: {exc}") from exc
    digest = hashlib.sha256(tflite).hexdigest()
    if digest != expected_sha256:
        raise ValueError(
            f"sha256 mismatch for {member} in {wheel.name}: expected {expected_sha256}, got {digest}; "
            "refusing to convert an unknown model"
        )
    version = licenses[0].split("/")[0][len("mediapipe-") : -len(".dist-info")]
    return WheelSource(wheel.name, version, tflite, digest, license_text)


def write_export_dir(tflite_path: Path, export_dir: Path, exact_resize: bool = True) -> Path:
    """Import ``tflite_path`` into a PaddleSeg-style export dir (model.json, model.pdiparams, deploy.yaml)."""
    from convert.tflite_import import import_tflite

    export_dir.mkdir(parents=True, exist_ok=True)
    import_tflite(tflite_path, export_dir, exact_resize=exact_resize)
    (export_dir / "deploy.yaml").write_text(DEPLOY_YAML)
    return export_dir


def notice_text(src: WheelSource) -> str:
    return f"""\
SegServing bundled model "{MODEL_NAME}"

Model: MediaPipe Selfie Segmentation (general model, 256x256 input), Google,
licensed under the Apache License 2.0 (full text in LICENSE, copied from the
mediapipe wheel's dist-info/LICENSE).

Source: {src.wheel_name} (mediapipe {src.version} on PyPI),
        member {TFLITE_MEMBER}
TFLite sha256: {src.sha256}

source/{TFLITE_NAME} is that file, unmodified.
The files in serving_server/ and serving_client/ are a derivative work: they
were produced from source/{TFLITE_NAME} by convert/portrait.py (TFLite ops
replayed as a Paddle program with the same weights, converted to float32, then
packaged by the SegServing converter, including an ONNX copy).
"""


def build_portrait(out: Path = DEFAULT_OUT, wheel: Path | None = None, exact_resize: bool = True) -> Path:
    """Build ``out`` (replacing it atomically) from ``wheel``, or from a freshly downloaded one."""
    from convert.api import ConvertOptions, convert_model
    from convert.output import staged_dirs

    with tempfile.TemporaryDirectory(prefix="portrait-") as work:
        work_dir = Path(work)
        src = read_wheel(wheel if wheel is not None else download_wheel(work_dir))
        with staged_dirs(Path(out)) as (stage,):
            source = stage / "source" / TFLITE_NAME
            source.parent.mkdir()
            source.write_bytes(src.tflite)
            export_dir = write_export_dir(source, work_dir / "paddleseg_export", exact_resize)
            convert_model(
                ConvertOptions(
                    dirname=export_dir,
                    serving_server=stage / "serving_server",
                    serving_client=stage / "serving_client",
                    name=MODEL_NAME,
                    onnx=True,
                )
            )
            (stage / "NOTICE").write_text(notice_text(src))
            (stage / "LICENSE").write_text(src.license_text)
    return Path(out)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m convert.portrait", description=__doc__.split("\n\n")[0])
    p.add_argument("--wheel", type=Path, help=f"a local mediapipe wheel (default: pip download {MEDIAPIPE_VERSION})")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output model dir (default: %(default)s)")
    p.add_argument(
        "--export-only",
        type=Path,
        metavar="DIR",
        help="only write the PaddleSeg-style export dir (model.json, model.pdiparams, deploy.yaml) to DIR",
    )
    p.add_argument(
        "--interpolate",
        action="store_true",
        help="replay RESIZE_BILINEAR with F.interpolate (faster) instead of exact slice/conv arithmetic",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from convert.loader import ConvertError

    try:
        if args.export_only is not None:
            with tempfile.TemporaryDirectory(prefix="portrait-") as work:
                src = read_wheel(args.wheel if args.wheel is not None else download_wheel(Path(work)))
                tflite = Path(work) / TFLITE_NAME
                tflite.write_bytes(src.tflite)
                write_export_dir(tflite, args.export_only, exact_resize=not args.interpolate)
            print(f"wrote {args.export_only}")
        else:
            print(f"wrote {build_portrait(args.out, args.wheel, exact_resize=not args.interpolate)}")
    except (ValueError, ConvertError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
