"""Engine parity: the same labelled images through segcore in-process on several engines, compared pixel by pixel."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from benchmarks.dataset import Sample, check_shapes, read_label
from benchmarks.metrics import AreaAccumulator
from segcore.engines import EngineOptions, create_engine, resolve_engine_name
from segcore.pipeline import SegmentationPipeline
from segcore.repository import ModelSpec

PRECISIONS = ("fp32", "fp16")


@dataclass(frozen=True)
class EngineChoice:
    """One `--parity` entry: ENGINE[-PRECISION] (paddle, onnxruntime, auto) or a bare precision (auto engine)."""

    label: str
    engine: str
    precision: str


def parse_engines(text: str) -> list[EngineChoice]:
    """'paddle,onnxruntime,fp16' -> choices; ValueError on an unknown or repeated entry."""
    choices: list[EngineChoice] = []
    for raw in (part.strip().lower() for part in text.split(",")):
        if not raw:
            continue
        engine, _, precision = raw.partition("-")
        if engine in PRECISIONS and not precision:
            engine, precision = "auto", engine
        precision = precision or "fp32"
        if engine not in ("auto", "paddle", "onnxruntime") or precision not in PRECISIONS:
            raise ValueError(f"--parity entry {raw!r}: use ENGINE[-PRECISION] with ENGINE paddle, onnxruntime or auto "
                             f"and PRECISION {' or '.join(PRECISIONS)}, or a bare precision")  # fmt: skip
        if any(c.label == raw for c in choices):
            raise ValueError(f"--parity lists {raw!r} twice")
        choices.append(EngineChoice(raw, engine, precision))
    if not choices:
        raise ValueError("--parity needs at least one engine, e.g. paddle,onnxruntime")
    return choices


def gpu_missing(engine: str) -> str | None:
    """Why fp16 cannot run on `engine` here (no GPU, no TensorRT), or None when it can."""
    if engine == "onnxruntime":
        import onnxruntime as ort

        available = ort.get_available_providers()
        if "CUDAExecutionProvider" not in available:
            return "fp16 needs a GPU: this onnxruntime has no CUDAExecutionProvider"
        if "TensorrtExecutionProvider" not in available:
            return "fp16 needs onnxruntime's TensorrtExecutionProvider, which this build lacks"
        return None
    import paddle
    from paddle import inference

    if not paddle.is_compiled_with_cuda() or paddle.device.cuda.device_count() == 0:
        return "fp16 needs a GPU: paddle is a CPU build or sees no CUDA device"
    if tuple(inference.get_trt_compile_version()) == (0, 0, 0):
        return "fp16 needs Paddle Inference with TensorRT, which this paddle build lacks"
    return None


def _options(choice: EngineChoice, cpu_threads: int) -> EngineOptions:
    if choice.precision == "fp16":
        return EngineOptions(device="gpu", use_trt=True, precision="fp16")
    return EngineOptions(cpu_threads=cpu_threads)


def load_pipelines(
    spec: ModelSpec, choices: Sequence[EngineChoice], cpu_threads: int, probe: np.ndarray | None = None
) -> tuple[dict[str, SegmentationPipeline], dict[str, str]]:
    """Pipelines for the choices that can run here (each warmed up on `probe`, so an engine that loads but cannot
    run, e.g. a TensorRT build failure, is skipped too), and the reason for each one skipped."""
    assert spec.config is not None
    pipelines: dict[str, SegmentationPipeline] = {}
    skipped: dict[str, str] = {}
    for choice in choices:
        try:
            engine_name = resolve_engine_name(spec.config, choice.engine)
            reason = gpu_missing(engine_name) if choice.precision == "fp16" else None
            if reason is None:
                engine = create_engine(spec.server_dir, spec.config, engine_name, _options(choice, cpu_threads))
                providers = getattr(engine, "providers", None)
                if choice.precision == "fp16" and providers and providers[0] != "TensorrtExecutionProvider":
                    reason = f"onnxruntime fell back to {providers[0]}: no fp16"
                else:
                    pipeline = SegmentationPipeline(spec.config, engine)
                    if probe is not None:
                        pipeline.segment(probe)
                    pipelines[choice.label] = pipeline
        except Exception as exc:  # engine load failures are reported, not fatal
            reason = f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}"
        if reason is not None:
            skipped[choice.label] = reason
    return pipelines, skipped


def _decode(path: os.PathLike[str] | str) -> np.ndarray:
    """Decode as the server does (cv2.imdecode, IMREAD_COLOR: BGR, EXIF orientation applied)."""
    try:
        image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
    except (OSError, cv2.error) as exc:
        raise ValueError(f"cannot decode image: {' '.join(str(exc).split())}") from None
    if image is None:
        raise ValueError("cannot decode image")
    return image


def _probe(samples: Sequence[Sample]) -> np.ndarray | None:
    """The first image that decodes, to warm the engines up on."""
    for sample in samples:
        try:
            return _decode(sample.image)
        except ValueError:
            continue
    return None


def run_parity(spec: ModelSpec, samples: Sequence[Sample], choices: Sequence[EngineChoice], num_classes: int,
               ignore_index: int = 255, progress: bool = True, cpu_threads: int = 1) -> dict[str, Any]:  # fmt: skip
    """Segment every sample on each engine; per engine its metrics, per pair agreement and mIoU delta vs the first
    engine that runs. An image that any engine fails on is left out for all of them and listed in `failures`."""
    pipelines, skipped = load_pipelines(spec, choices, cpu_threads, _probe(samples))
    labels = list(pipelines)
    areas = {name: AreaAccumulator(num_classes, ignore_index) for name in labels}
    seconds = dict.fromkeys(labels, 0.0)
    agree = dict.fromkeys(labels, 0)
    pixels, failures = 0, []
    todo = samples if labels else []  # nothing to run when every engine was skipped
    for sample in tqdm(todo, disable=not progress or not labels, desc="parity", unit="img"):
        try:
            image = _decode(sample.image)
            preds = {}
            for name in labels:
                start = time.perf_counter()
                preds[name] = pipelines[name].segment(image).label_map
                seconds[name] += time.perf_counter() - start
        except Exception as exc:  # one image failing must not stop the comparison
            failures.append({"image": str(sample.image), "line": sample.line, "error": f"{type(exc).__name__}: {exc}"})
            continue
        label = read_label(sample.label)
        reference = preds[labels[0]]
        check_shapes(reference, label, sample)
        pixels += reference.size
        for name in labels:
            areas[name].add(preds[name], label)
            agree[name] += int(np.count_nonzero(preds[name] == reference))
    done = len(todo) - len(failures)
    engines: dict[str, dict[str, Any]] = {}
    for choice in choices:
        if choice.label in skipped:
            engines[choice.label] = {"status": "skipped", "reason": skipped[choice.label]}
            continue
        engine = pipelines[choice.label].engine
        metrics = areas[choice.label].metrics()
        engines[choice.label] = {
            "status": "ok",
            "engine": engine.name,
            "precision": choice.precision,
            "providers": getattr(engine, "providers", None),
            "mIoU": metrics.miou,
            "metrics": metrics.to_dict(),
            "ms_per_image": 1000 * seconds[choice.label] / done if done else None,
        }
    reference = labels[0] if labels else None
    pairs = [
        {
            "engine": name,
            "reference": labels[0],
            "label_agreement": agree[name] / pixels if pixels else None,
            "miou_delta": engines[name]["mIoU"] - engines[labels[0]]["mIoU"],
        }
        for name in labels[1:]
    ]
    return {"model": spec.name, "reference": reference, "images": done, "failed": len(failures),
            "failures": failures, "engines": engines, "pairs": pairs}  # fmt: skip


def summary(report: dict[str, Any]) -> str:
    """Human-readable parity lines."""
    lines = [f"[PARITY] #Images: {report['images']} failed: {report['failed']} reference: {report['reference']}"]
    for name, entry in report["engines"].items():
        if entry["status"] == "skipped":
            lines.append(f"[PARITY] {name}: skipped ({entry['reason']})")
        else:
            lines.append(f"[PARITY] {name}: mIoU {entry['mIoU']:.4f} ({entry['ms_per_image'] or 0:.1f} ms/img)")
    for pair in report["pairs"]:
        agreement = "n/a" if pair["label_agreement"] is None else f"{pair['label_agreement']:.6f}"
        lines.append(f"[PARITY] {pair['engine']} vs {pair['reference']}: label agreement {agreement} "
                     f"mIoU delta {pair['miou_delta']:+.6f}")  # fmt: skip
    return "\n".join(lines)
