"""`python -m benchmarks scaling`: how the cost of one image grows with the photo's size and the engine's batch
size, in one process on one thread (no transport), for each model named.

- Photo size: the worker's own code (JobHandler, as a request runs it) on the benchmark photo resized to each
  size; milliseconds per image and the worker's stage timings (decode + preprocess, inference, postprocess +
  encode), medians.
- Batch size: the engine alone (benchmarks.engine_sweep) on the CPU; milliseconds per image = p50 / batch.

Writes OUT/scaling.json and OUT/scaling.md, and the plot PLOT (default docs/perf-scaling.png).

    python -m benchmarks scaling [--models portrait,/tmp/bm/pp_liteseg_random] [--sizes 320x240,640x480,...]
                                 [--batches 1,2,4,8,16] [--seconds 2] [--out benchmarks/results/scaling]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import cv2

from benchmarks import engine_sweep
from benchmarks.payloads import photo
from benchmarks.report import md_table
from benchmarks.run import machine
from segcore.engines import EngineOptions, create_engine
from segcore.images import ImageLimits
from segcore.repository import ModelRepository, ModelSpec
from server.jobs import Job, JobKind
from server.workers.handler import JobHandler

SIZES = "320x240,640x480,1280x720,1920x1080,3840x2160"


def _pairs(text: str) -> list[tuple[int, int]]:
    return [(int(w), int(h)) for w, h in (s.lower().split("x") for s in text.split(",") if s)]


def by_size(spec: ModelSpec, sizes: list[tuple[int, int]], seconds: float) -> list[dict[str, Any]]:
    """The worker's code, one request at a time, per photo size."""
    assert spec.config is not None
    engine = create_engine(spec.server_dir, spec.config, "onnxruntime", EngineOptions(cpu_threads=1))
    handler = JobHandler(spec, engine, ImageLimits())
    rows = []
    for width, height in sizes:
        jpeg = cv2.imencode(".jpg", photo((width, height)), [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
        walls: list[float] = []
        stages: dict[str, list[float]] = {}
        handler.handle([Job(0, JobKind.IMAGE, jpeg)])  # warm-up
        stop = time.perf_counter() + seconds
        while time.perf_counter() < stop or len(walls) < 3:
            start = time.perf_counter()
            (result,) = handler.handle([Job(0, JobKind.IMAGE, jpeg)])
            walls.append(time.perf_counter() - start)
            assert result.status == 200, result.message
            for stage, value in result.timings.items():
                stages.setdefault(stage, []).append(value)
        medians = {f"{k}_ms": round(statistics.median(v) * 1000, 2) for k, v in sorted(stages.items())}
        rows.append({"size": f"{width}x{height}", "megapixels": round(width * height / 1e6, 3),
                     "jpeg_kb": round(len(jpeg) / 1000, 1), "runs": len(walls),
                     "ms_per_image": round(statistics.median(walls) * 1000, 2), **medians})  # fmt: skip
    return rows


def by_batch(spec: ModelSpec, batches: list[int], seconds: float) -> list[dict[str, Any]]:
    rows = engine_sweep.sweep(spec, "cpu", batches, seconds)
    return [{**r, "ms_per_image": round(r["p50_ms"] / r["batch"], 2)} for r in rows]


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for model in results["models"]:
        sizes = model["by_size"]
        left.plot([r["megapixels"] for r in sizes], [r["ms_per_image"] for r in sizes], marker="o", label=model["name"])
        for r in sizes:
            left.annotate(r["size"], (r["megapixels"], r["ms_per_image"]), fontsize=7, xytext=(3, -9),
                          textcoords="offset points")  # fmt: skip
        batches = model["by_batch"]
        right.plot([r["batch"] for r in batches], [r["ms_per_image"] for r in batches], marker="o", label=model["name"])
    left.set(xlabel="photo size (megapixels, JPEG in, PNG label map out)", ylabel="ms per image (worker code)",
             xscale="log", yscale="log", title="cost per image vs photo size")  # fmt: skip
    right.set(xlabel="engine batch size", ylabel="ms per image (engine alone)", xscale="log", yscale="log",
              title="cost per image vs batch size")  # fmt: skip
    right.set_xticks([r["batch"] for r in results["models"][0]["by_batch"]],
                     [str(r["batch"]) for r in results["models"][0]["by_batch"]])  # fmt: skip
    for axis in (left, right):
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    m = results["machine"]
    fig.suptitle(f"{m['cpu']}, one thread, onnxruntime", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    parts = [f"# Cost per image vs photo size and batch size\n\n{m['cpu']}, {m['cores']} cores, Python {m['python']};"
             f" one process, one thread, onnxruntime. Started {results['started']}."]  # fmt: skip
    for model in results["models"]:
        size_columns = [k for k in model["by_size"][0] if k not in ("runs",)]
        parts += [f"## {model['name']}: photo size (the worker's code)", md_table(model["by_size"], size_columns),
                  f"## {model['name']}: engine batch size",
                  md_table(model["by_batch"], ["input", "batch", "p50_ms", "ms_per_image", "img_per_s"])]  # fmt: skip
    return "\n\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks scaling", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="portrait", help="comma-separated repository names or model dirs")
    parser.add_argument("--sizes", default=SIZES, help=f"photo sizes, WxH (default {SIZES})")
    parser.add_argument("--batches", default="1,2,4,8,16", help="engine batch sizes")
    parser.add_argument("--seconds", type=float, default=2.0, help="per size and per batch size")
    parser.add_argument("--out", default="benchmarks/results/scaling")
    parser.add_argument("--plot", default="docs/perf-scaling.png")
    args = parser.parse_args(argv)
    repo, sizes = ModelRepository(), _pairs(args.sizes)
    batches = [int(b) for b in args.batches.split(",") if b]
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    models = []
    for ref in (m for m in args.models.split(",") if m):
        spec = repo.resolve(ref)
        models.append({"name": spec.name, "by_size": by_size(spec, sizes, args.seconds),
                       "by_batch": by_batch(spec, batches, args.seconds)})  # fmt: skip
    results = {"started": started, "machine": machine(), "models": models}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scaling.json").write_text(json.dumps(results, indent=1))
    (out / "scaling.md").write_text(text := markdown(results))
    plot(results, Path(args.plot))
    print(f"{text}\nresults in {out}/scaling.json and .md; plot {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
