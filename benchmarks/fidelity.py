"""PaddleSeg fidelity report: SegServing's labels vs PaddleSeg's own pipeline, per export and engine.

    python -m benchmarks parity [--results benchmarks/results/paddleseg-fidelity] [--work DIR] [--kinds a,b]

Builds the PaddleSeg exports of `benchmarks.paddleseg_exports` (both program formats where Paddle can write
them), converts each with `convert`, and segments photos of several sizes (1280x720, 333x517, ...) three ways:
PaddleSeg's pipeline (`benchmarks.paddleseg_reference`), and SegServing's serving pipeline (the workers' code,
in process) on Paddle Inference and on the verified ONNX copy. Prints and writes pixel agreement: the lowest
over the photos, and the share of pixels over all of them. tests/fidelity checks the same through a server.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks.paddleseg_exports import KINDS, build_exports, synthetic_batch
from benchmarks.paddleseg_reference import PaddleSegReference

SIZES = ((1280, 720), (333, 517), (640, 480), (200, 1000), (97, 143))
DEFAULT_RESULTS = Path(__file__).resolve().parent / "results" / "paddleseg-fidelity"


def photos(folder: Path, sizes: tuple[tuple[int, int], ...] = SIZES) -> list[Path]:
    """Discs and boxes on noisy ground (what the trained export learnt) at `sizes` (w, h), as PNG files."""
    paths = []
    for i, (w, h) in enumerate(sizes):
        rgb, _ = synthetic_batch(np.random.default_rng(100 + i), 1, (h, w))
        path = folder / f"{w}x{h}.png"
        cv2.imwrite(str(path), np.ascontiguousarray(rgb[0].transpose(1, 2, 0)[:, :, ::-1]).astype(np.uint8))
        paths.append(path)
    return paths


def convert_export(export: Path, entry: Path) -> Any:
    from convert.api import ConvertOptions, convert_model

    options = ConvertOptions(dirname=export, serving_server=entry / "serving_server",
                             serving_client=entry / "serving_client", name=entry.name)  # fmt: skip
    return convert_model(options).config


def measure(export: Path, entry: Path, images: list[Path]) -> dict[str, Any]:
    """Agreement of each engine with PaddleSeg, and of the engines with each other, over `images`."""
    from segcore.engines import EngineOptions, create_engine
    from segcore.pipeline import SegmentationPipeline
    from segcore.repository import load_spec

    spec = load_spec(entry)
    assert spec.config is not None
    engines = ["paddle"] + (["onnxruntime"] if spec.config.onnx else [])
    pipelines = {
        e: SegmentationPipeline(spec.config, create_engine(spec.server_dir, spec.config, e, EngineOptions()))
        for e in engines
    }
    reference = PaddleSegReference(export)
    same: dict[str, list[float]] = {f"{e}_vs_paddleseg": [] for e in engines}
    if len(engines) == 2:
        same["onnxruntime_vs_paddle"] = []
    sizes = []
    for image in images:
        expected = reference(image)
        bgr = cv2.imread(str(image))
        labels = {e: p.segment(bgr).label_map for e, p in pipelines.items()}
        sizes.append(float(expected.size))
        for e, got in labels.items():
            same[f"{e}_vs_paddleseg"].append(float(np.mean(got == expected)) if got.shape == expected.shape else 0.0)
        if len(engines) == 2:
            same["onnxruntime_vs_paddle"].append(float(np.mean(labels["onnxruntime"] == labels["paddle"])))
    return {
        "engines": engines,
        "onnx_rewrites": spec.config.onnx.rewrites if spec.config.onnx else [],
        "onnx_missing": spec.config.onnx_missing,
        "min_agreement": {k: min(v) for k, v in same.items()},
        "pixel_agreement": {k: float(np.dot(v, sizes) / sum(sizes)) for k, v in same.items()},
        "pixels": int(sum(sizes)),
    }


def table(results: dict[str, Any]) -> str:
    """The report as a Markdown table (lowest agreement over the photos; all 100% prints as 100%)."""

    def pct(value: float | None) -> str:
        return "n/a" if value is None else ("100%" if value == 1.0 else f"{100 * value:.4f}%")

    lines = [
        "| export | format | Paddle vs PaddleSeg | ONNX Runtime vs PaddleSeg | ONNX Runtime vs Paddle | ONNX copy |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in results["exports"].items():
        kind, fmt = name.rsplit("-", 1)
        low = row["min_agreement"]
        onnx = "verified" + (" (adaptive pooling rewritten)" if row["onnx_rewrites"] else "")
        if "onnxruntime" not in row["engines"]:
            onnx = f"none: {row['onnx_missing']}"
        lines.append(
            f"| {kind}{' (trained)' if KINDS[kind].trained else ''} | {fmt} | {pct(low.get('paddle_vs_paddleseg'))} "
            f"| {pct(low.get('onnxruntime_vs_paddleseg'))} | {pct(low.get('onnxruntime_vs_paddle'))} "
            f"| {onnx} |"
        )
    return "\n".join(lines)


def run(work: Path, results_dir: Path, kinds: list[str], steps: int) -> dict[str, Any]:
    started = time.time()
    exports = build_exports(work / "exports", kinds, steps=steps)
    images = photos(Path(tempfile.mkdtemp(prefix="photos-", dir=work)))
    rows = {}
    for name, export in exports.items():
        convert_export(export, work / "repository" / name)
        rows[name] = measure(export, work / "repository" / name, images)
        low = rows[name]["min_agreement"]
        print(f"{name}: " + ", ".join(f"{k} {v:.6f}" for k, v in low.items()), file=sys.stderr, flush=True)
    results = {
        "what": "lowest per-photo pixel agreement of SegServing's labels with PaddleSeg's pipeline",
        "photos": [f"{w}x{h}" for w, h in SIZES],
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}",
        "seconds": round(time.time() - started, 1),
        "exports": rows,
    }
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (results_dir / "results.md").write_text(
        "# PaddleSeg fidelity\n\nLowest per-photo pixel agreement over photos of "
        f"{', '.join(results['photos'])} (`python -m benchmarks parity`).\n\n{table(results)}\n"
    )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks parity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="folder for results.json and .md")
    parser.add_argument("--work", type=Path, default=None, help="folder for the exports (default: a temp dir)")
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, of: {', '.join(KINDS)}")
    parser.add_argument("--steps", type=int, default=300, help="training steps of the trained export")
    args = parser.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    if unknown := sorted(set(kinds) - set(KINDS)):
        parser.error(f"unknown kinds {unknown}")
    with tempfile.TemporaryDirectory(prefix="fidelity-") as tmp:
        results = run(args.work or Path(tmp), args.results, kinds, args.steps)
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
