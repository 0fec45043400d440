"""`python -m benchmarks profile`: CPU time per image of each stage, the server's code vs the independent pipeline.

    python -m benchmarks profile [--model portrait] [--size 640x480] [--repeat 200] [--out FILE] [--no-transport]

OURS is the code a worker runs, stage by stage: segcore.images.decode_image, the Preprocessor's two steps
(`geometry`: to RGB, pixel dtype and the geometric transforms; `tensor`: Normalize and HWC -> CHW), the engine,
segcore.postprocess's label and reverse-transform steps, segcore.images.label_png. INDEPENDENT is the same stage
of benchmarks.reference. Each repeat runs both chains once, alternately; the table holds the medians of
time.process_time (every thread of this process) per stage; the JSON also holds time.thread_time (the calling
thread alone). "worker total" is one whole call of each: the worker's JobHandler.handle on an image job, and the
reference pipeline; their difference between the two clocks is what OpenCV's helper threads spent (none where
OpenCV runs on one thread, as a CPU worker with one engine thread now does, and so this process). "transport" is
what a served request costs beyond that: the server's CPU per request (its whole process tree, one worker,
concurrency 1) minus the worker total, and in wall time the request's latency minus the worker's own timings
(its Server-Timing header).
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2

from benchmarks.reference import Reference

STAGES = ("decode", "resize", "normalize", "engine", "argmax", "resize back", "encode")
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "profile"


def photo(width: int, height: int) -> bytes:
    """The benchmark photo (benchmarks.payloads: the astronaut) at width x height, as a quality-95 JPEG."""
    from benchmarks.payloads import photo as astronaut

    return bytes(cv2.imencode(".jpg", astronaut((width, height)), [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes())


class Ours:
    """The worker's code for one model, callable stage by stage (and whole, as the worker's JobHandler); making it
    tunes this process as a CPU worker is (allocator, OpenCV threads = engine threads), for both sides."""

    def __init__(self, model_dir: Path, threads: int) -> None:
        from benchmarks.limit import worker_handler
        from segcore.images import ImageLimits

        self.handler = worker_handler(str(model_dir), "onnxruntime", threads)
        assert self.handler.images is not None and self.handler.spec.config is not None
        self.pre, self.post = self.handler.images.preprocess, self.handler.images.post
        self.input_name, self.limits = self.handler.spec.config.input_name, ImageLimits()

    def stages(self, data: bytes, clock: Callable[[str, Callable[[], Any]], Any]) -> None:
        from segcore import images
        from segcore.postprocess import as_labels, labels_from_maps, resize_maps, reverse_transform

        image = clock("decode", lambda: images.decode_image(data, self.limits))
        sample = clock("resize", lambda: self.pre.geometry(image))
        tensor = clock("normalize", lambda: self.pre.tensor(sample))
        output = clock("engine", lambda: self.handler.engine.run({self.input_name: tensor[None]}))[
            self.post.output_name][0]  # fmt: skip
        info = sample.trans_info
        if self.post.output_op == "argmax":
            net = clock("argmax", lambda: as_labels(output[0] if output.ndim == 3 and output.shape[0] == 1 else output))
            labels = clock("resize back", lambda: reverse_transform(net, info, cv2.INTER_NEAREST))
        else:
            maps = clock("resize back", lambda: resize_maps(output, info))
            labels = clock("argmax", lambda: labels_from_maps(maps, self.post.output_op))
        clock("encode", lambda: images.label_png(labels))

    def whole(self, data: bytes) -> None:
        from server.jobs import Job, JobKind

        result = self.handler.handle([Job(0, JobKind.IMAGE, data)])[0]
        assert result.status == 200, result.message


def independent_stages(ref: Reference, data: bytes, clock: Callable[[str, Callable[[], Any]], Any]) -> None:
    image = clock("decode", lambda: ref.decode(data))
    small = clock("resize", lambda: ref.resize(image))
    tensor = clock("normalize", lambda: ref.normalize(small))
    output = clock("engine", lambda: ref.infer(tensor))
    net = clock("argmax", lambda: ref.labels(output))
    labels = clock("resize back", lambda: ref.resize_back(net, image.shape[0], image.shape[1]))
    clock("encode", lambda: ref.encode(labels))


def measure(model_dir: Path, data: bytes, repeat: int, threads: int = 1) -> dict[str, dict[str, float]]:
    """{side: {stage: median CPU ms}} for "ours" and "independent", stages plus "worker total", on the process
    clock; "ours thread" and "independent thread" hold the same on the calling thread's clock."""
    ours, ref = Ours(model_dir, threads), Reference(model_dir, threads)
    times: dict[str, dict[str, list[tuple[float, float]]]] = {"ours": {}, "independent": {}}

    def clock_for(side: str) -> Callable[[str, Callable[[], Any]], Any]:
        def clock(stage: str, step: Callable[[], Any]) -> Any:
            process, thread = time.process_time(), time.thread_time()
            value = step()
            times[side].setdefault(stage, []).append((time.process_time() - process, time.thread_time() - thread))
            return value

        return clock

    runs: dict[str, Callable[[], None]] = {
        "ours": lambda: ours.stages(data, clock_for("ours")),
        "independent": lambda: independent_stages(ref, data, clock_for("independent")),
    }
    wholes = {"ours": lambda: ours.whole(data), "independent": lambda: ref(data)}
    for side in runs:  # warm-up, not counted
        runs[side](), wholes[side]()
        times[side].clear()
    for i in range(repeat):
        for side in ("ours", "independent") if i % 2 == 0 else ("independent", "ours"):
            runs[side]()
            clock_for(side)("worker total", wholes[side])
    return {f"{side}{suffix}": {stage: round(statistics.median(t[which] for t in v) * 1000, 3)
                                for stage, v in stages.items()}
            for side, stages in times.items() for which, suffix in ((0, ""), (1, " thread"))}  # fmt: skip


def transport(plan: Any, data: bytes, requests: int, worker_total_ms: float) -> dict[str, Any]:
    """One served worker at concurrency 1: its process tree's CPU per request beyond the worker total, and the
    latency beyond the worker's own timings (Server-Timing), medians over `requests` requests."""
    import psutil

    from benchmarks.procs import free_port, serve
    from benchmarks.run import server_command

    port = free_port()
    with tempfile.TemporaryDirectory() as tmp, serve(server_command(plan, port, "onnxruntime", 1),
                                                     f"http://127.0.0.1:{port}/health/ready",
                                                     Path(tmp) / "server.log") as server:  # fmt: skip
        connection, path = http.client.HTTPConnection("127.0.0.1", port), f"/v1/models/{plan.model}/segment"

        def request() -> tuple[float, float]:
            started = time.perf_counter()
            connection.request("POST", path, body=data, headers={"Content-Type": "image/jpeg"})
            reply = connection.getresponse()
            reply.read()
            elapsed = time.perf_counter() - started
            if reply.status != 200:
                raise RuntimeError(f"served request: HTTP {reply.status}")
            worker = sum(float(part.split("dur=")[1]) for part in reply.getheader("Server-Timing", "").split(","))
            return elapsed * 1000, worker

        for _ in range(max(5, requests // 10)):
            request()
        tree = [psutil.Process(server.pid), *psutil.Process(server.pid).children(recursive=True)]

        def cpu() -> list[float]:
            return [sum(p.cpu_times()[:2]) for p in tree]

        before = cpu()
        samples = [request() for _ in range(requests)]
        spent = [(b - a) / requests * 1000 for a, b in zip(before, cpu(), strict=True)]
    latency = statistics.median(s[0] for s in samples)
    return {"requests": requests, "server_cpu_ms_per_request": round(sum(spent), 3),
            "front_cpu_ms": round(spent[0], 3), "workers_cpu_ms": round(sum(spent[1:]), 3),
            "cpu_ms": round(sum(spent) - worker_total_ms, 3), "latency_p50_ms": round(latency, 3),
            "wall_ms": round(statistics.median(s[0] - s[1] for s in samples), 3)}  # fmt: skip


def notes(config: Any) -> dict[str, str]:
    """Per stage: where exactness vs PaddleSeg (or the model's reference) needs a costlier op than the plain one."""
    pre, op = config.preprocess, config.postprocess.output_op
    resize = []
    if any(getattr(t, "pixel_center", "half") == "corner" for t in pre.transforms):
        resize.append("corner sampling (MediaPipe's warpAffine) where cv2.resize samples half-pixel centres")
    if pre.pixel_dtype == "float32":
        resize.append("PaddleSeg resizes float32 pixels (no rounding): a full-size conversion and a float resize")
    maps = "bilinear on the float maps at the photo's size, as PaddleSeg's reverse transform (plain: nearest on labels)"
    return {
        "decode": "ours reads the header first (format, size limits, truncation)",
        "resize": "; ".join(resize),
        "normalize": "same float32 values as (x / 255 - mean) / std, folded into x * scale - mean / std",
        "engine": "the same ONNX Runtime settings (intra-op threads as the worker's, inter-op 1, ORT_ENABLE_ALL)",
        "argmax": "the model's own labels" if op == "argmax" else "at the photo's size, after the maps go back",
        "resize back": "Paddle's nearest index rule (float32 ratio), not OpenCV's" if op == "argmax" else maps,
        "encode": "lossless: the flags change bytes and speed, never pixels",
    }


def table(result: dict[str, Any]) -> str:
    """The stage table as Markdown."""
    ours, ind, note = result["ours"], result["independent"], result["notes"]
    lines = ["| stage | ours ms | independent ms | gap ms | note |", "|---|---|---|---|---|"]
    for stage in (*STAGES, "worker total"):
        gap = round(ours[stage] - ind[stage], 3)
        lines.append(f"| {stage} | {ours[stage]} | {ind[stage]} | {gap:+} | {note.get(stage, '')} |")
    lines.append(f"| sum of stages | {round(sum(ours[s] for s in STAGES), 3)} | "
                 f"{round(sum(ind[s] for s in STAGES), 3)} | | |")  # fmt: skip
    helper = {side: round(result[side]["worker total"] - result[f"{side} thread"]["worker total"], 3)
              for side in ("ours", "independent")}  # fmt: skip
    lines.append(f"| of the worker total, OpenCV's helper threads | {helper['ours']} | {helper['independent']} | "
                 f"{helper['ours'] - helper['independent']:+.3f} | process minus calling-thread CPU: OpenCV's pool "
                 f"spin-waits after each parallel op, and that CPU lands in the next stage |")  # fmt: skip
    if result.get("transport"):
        t = result["transport"]
        detail = (f"server CPU {t['server_cpu_ms_per_request']} ms per request (front {t['front_cpu_ms']}, worker "
                  f"{t['workers_cpu_ms']}) minus the worker total; wall: {t['wall_ms']} of {t['latency_p50_ms']} ms "
                  "per request")  # fmt: skip
        lines.append(f"| transport | {t['cpu_ms']} | 0 | {t['cpu_ms']:+} | {detail} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--model", default="portrait", help="a repository name or a model dir (default portrait)")
    parser.add_argument("--repository", default=None)
    parser.add_argument("--size", default="640x480", help="photo size WxH (default 640x480)")
    parser.add_argument("--repeat", type=int, default=200, help="repeats per stage (default 200)")
    parser.add_argument("--requests", type=int, default=300, help="served requests for the transport row")
    parser.add_argument("--no-transport", dest="transport", action="store_false", help="skip the served requests")
    parser.add_argument("--out", default=None, help="JSON file (default benchmarks/results/profile/MODEL-WxH.json)")
    args = parser.parse_args(argv)
    from benchmarks.run import Plan, machine
    from segcore.repository import ModelRepository

    width, height = (int(v) for v in args.size.lower().split("x"))
    repo = ModelRepository(Path(args.repository)) if args.repository else ModelRepository()
    spec = repo.resolve(args.model)
    assert spec.config is not None and spec.config.preprocess is not None and spec.config.postprocess is not None
    data = photo(width, height)
    result: dict[str, Any] = {"model": spec.name, "size": [width, height], "repeat": args.repeat,
                              "unit": "CPU ms per image (median)", "machine": machine(),
                              "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}  # fmt: skip
    result.update(measure(spec.server_dir, data, args.repeat), notes=notes(spec.config))
    out = Path(args.out) if args.out else DEFAULT_OUT / f"{spec.name}-{width}x{height}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.transport:
        plan = Plan(model=spec.name, model_ref=str(spec.server_dir.parent) if Path(args.model).is_dir() else "")
        result["transport"] = transport(plan, data, args.requests, result["ours"]["worker total"])
    out.write_text(json.dumps(result, indent=1))
    print(f"{spec.name}, {width}x{height} JPEG, {result['unit']} over {args.repeat} repeats\n\n{table(result)}\n\n"
          f"written to {out}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
