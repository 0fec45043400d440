"""`python -m benchmarks.gpu`: the GPU half of the benchmark issue, in one run, on the image API (JPEG in).

1. Dynamic batching: two ONNX Runtime servers up at once, `--batch_size 1` and `--batch_size 8
   --batch_timeout_ms 2`, closed loop at concurrency 16, load alternated A B B A ... for --rounds rounds; QPS,
   p50, p99, the mean batch the server formed, and the median per-round QPS ratio batched / batch 1.
2. Engines: Paddle Inference fp32, ONNX Runtime (CUDA EP) and Paddle + TensorRT fp16, one after another, at
   concurrency 1 and 16, unbatched (--engine_batch_size 1) so the engine is the only difference; QPS, p50, p99
   and the ratio to Paddle fp32. An engine whose server does not start is recorded as skipped with the server's
   own error line (on a CPU build, --use_trt makes the server exit with "this paddlepaddle build has no CUDA").
3. Workers per GPU: one server at a time with --thread N (default batching), closed loop at concurrency 32; the
   CPU work of a request (decode, resize, encode) runs in its worker, so the worker count sets the ceiling.
4. The engine alone in this process (benchmarks.engine_sweep): img/s and latency vs batch size, and on a GPU the
   same with input and output left in GPU memory, which shows what the host <-> device copies cost.
5. The machine, the GPUs (nvidia-smi), paddlepaddle(-gpu) / onnxruntime(-gpu) versions and the device.

Writes OUT/gpu-MODEL.json and OUT/gpu-MODEL.md (server logs in OUT/gpu-MODEL-logs/). `--device cpu` runs the
same steps without --gpu_ids as a check of this script; its files are named cpu-check-MODEL.* so they are never
taken for GPU results. `--device gpu` with no GPU visible exits 2.

    python -m benchmarks.gpu [--model portrait] [--duration 10] [--rounds 3] [--out benchmarks/results]
                             [--device gpu|cpu] [--thread 1] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from benchmarks import engine_sweep
from benchmarks.paired import alternate
from benchmarks.payloads import Payloads, prepare
from benchmarks.procs import free_port, serve
from benchmarks.report import md_table
from benchmarks.run import Plan, load, machine, protocol_spec, server_command, sweep
from segcore.repository import ModelRepository

# name -> (--engine, extra flags); the first is the baseline of the ratios
ENGINES: dict[str, tuple[str, list[str]]] = {
    "paddle fp32": ("paddle", []),
    "onnxruntime": ("onnxruntime", []),
    "paddle + TensorRT fp16": ("paddle", ["--use_trt", "--precision", "fp16"]),
}
PACKAGES = ("paddlepaddle-gpu", "paddlepaddle", "onnxruntime-gpu", "onnxruntime")


@dataclass
class GpuPlan:
    """What to run."""

    model: str = "portrait"
    device: str = "gpu"  # gpu | cpu (a check of this script)
    duration: float = 10.0
    rounds: int = 3
    thread: int = 1  # workers per server (Paddle Serving's default on one GPU)
    concurrency: int = 16
    batch_size: int = 8
    batch_timeout_ms: float = 2.0  # a few ms: well under one batch's inference, enough for 16 clients to refill
    engine_batch_size: int = 1
    engine_concurrency: list[int] = field(default_factory=lambda: [1, 16])
    sweep_batches: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16, 32, 64])
    worker_counts: list[int] = field(default_factory=lambda: [1, 4, 8, 16])
    worker_concurrency: int = 32
    sweep_seconds: float = 2.0
    out: str = "benchmarks/results"


def gpus() -> tuple[list[dict[str, str]], str]:
    """The GPUs nvidia-smi lists, or ([], why there are none)."""
    query = ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"]
    try:
        proc = subprocess.run(query, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [], f"nvidia-smi is not usable ({exc})"
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        why = (proc.stderr or proc.stdout).strip().splitlines()
        return [], f"nvidia-smi failed (exit {proc.returncode}{': ' + why[0] if why else ''})"
    keys = ("name", "driver", "memory")
    return [dict(zip(keys, (v.strip() for v in line.split(",")), strict=False)) for line in lines], ""


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = dict.fromkeys(PACKAGES)
    for name in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def command(plan: GpuPlan, base: Plan, port: int, engine: str, flags: list[str]) -> list[str]:
    """benchmarks.run's server command plus these flags, on GPU 0 unless this is a CPU check."""
    gpu = ["--gpu_ids", "0"] if plan.device == "gpu" else []
    return [*server_command(base, port, engine, plan.thread), *flags, *gpu]


def server_error(log: Path, exc: Exception) -> str:
    """The server's own error line from its log (serve() only says that it exited), else the exception."""
    text = log.read_text(errors="replace") if log.exists() else ""
    line = next((s for s in text.splitlines() if re.search(r"\bERROR\b|: error: ", s)), "")
    return re.sub(r"^.*?\bERROR\s+", "", line).strip() or str(exc)


def notes(log: Path) -> dict[str, Any]:
    """The worker's ready line, and the engines' own error lines (Paddle's glog, ONNX Runtime's logger), which
    tell where an engine fell back or misbehaved without failing."""
    lines = log.read_text(errors="replace").splitlines()
    found = (re.search(r"^E\d{4} [^\]]*\] (.*)|\[E:onnxruntime[^\]]*\] (.*)", s) for s in lines)
    return {"worker": next((s.split(": ", 1)[-1] for s in lines if " worker 0 ready: " in s), ""),
            "engine_errors": sorted({m.group(1) or m.group(2) for m in found if m})}  # fmt: skip


def batch_counts(port: int, model: str) -> tuple[float, float]:
    """(jobs, batches) the server has sent to its workers so far, from its Prometheus /metrics."""
    found = dict.fromkeys(("sum", "count"), 0.0)
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text.splitlines():
        for key in found:
            if line.startswith(f'segserving_batch_size_{key}{{model="{model}"}}'):
                found[key] = float(line.rsplit(" ", 1)[1])
    return found["sum"], found["count"]


def side(name: str, flags: list[str], runs: list[dict[str, Any]], before: tuple[float, float],
         after: tuple[float, float], log: Path) -> dict[str, Any]:  # fmt: skip
    """One server of the batching comparison: medians over the rounds, and the mean batch it formed."""
    batches = after[1] - before[1]
    errors: dict[str, int] = {}
    for run in runs:
        for status, count in run["errors"].items():
            errors[status] = errors.get(status, 0) + count
    return {"server": name, "flags": " ".join(flags), "qps": statistics.median(r["qps"] for r in runs),
            "p50_ms": statistics.median(r["p50_ms"] for r in runs),
            "p99_ms": statistics.median(r["p99_ms"] for r in runs), "errors": errors,
            "mean_batch": round((after[0] - before[0]) / batches, 2) if batches else None, **notes(log),
            "runs": runs}  # fmt: skip


def run_batching(plan: GpuPlan, base: Plan, payloads: Payloads, logs: Path, bar: tqdm) -> dict[str, Any]:
    """Batched vs batch 1 at plan.concurrency, both servers up, load alternated."""
    batched = ["--batch_size", str(plan.batch_size), "--batch_timeout_ms", f"{plan.batch_timeout_ms:g}"]
    flags = {f"batch {plan.batch_size}, {plan.batch_timeout_ms:g} ms": batched, "batch 1": ["--batch_size", "1"]}
    head = {"concurrency": plan.concurrency, "engine": "onnxruntime", "rounds": plan.rounds}
    try:
        with contextlib.ExitStack() as stack:
            ports, loads = {}, []
            for i, (name, extra) in enumerate(flags.items()):
                ports[name], log = free_port(), logs / f"batching-{i}.log"
                health = f"http://127.0.0.1:{ports[name]}/health/ready"
                server = stack.enter_context(serve(command(plan, base, ports[name], "onnxruntime", extra), health,
                                                   log, timeout=600))  # fmt: skip
                spec = protocol_spec("image", ports[name], base, payloads)
                spec.concurrency = plan.concurrency
                loads.append((spec, server.pid))
            before = {name: batch_counts(port, base.model) for name, port in ports.items()}
            result = alternate(lambda: load(*loads[0]), lambda: load(*loads[1]), plan.rounds, lambda: bar.update(1))
            after = {name: batch_counts(port, base.model) for name, port in ports.items()}
        rows = [side(name, flags[name], result[f"{ab}_runs"], before[name], after[name], logs / f"batching-{i}.log")
                for i, (name, ab) in enumerate(zip(flags, "ab", strict=True))]  # fmt: skip
    except (RuntimeError, TimeoutError) as exc:
        bar.update(2 * plan.rounds)
        return {**head, "skipped": server_error(log, exc)}
    return {**head, "ratio": result["ratio"], "round_ratios": result["round_ratios"], "rows": rows}


def run_engines(plan: GpuPlan, base: Plan, payloads: Payloads, logs: Path, bar: tqdm) -> list[dict[str, Any]]:
    """Each engine's server alone, closed loop at plan.engine_concurrency; ratios to the first engine."""
    entries: list[dict[str, Any]] = []
    for i, (name, (engine, extra)) in enumerate(ENGINES.items()):
        flags = ["--engine", engine, *extra, "--batch_size", str(plan.engine_batch_size)]
        entry: dict[str, Any] = {"engine": name, "flags": " ".join(flags)}
        port, log = free_port(), logs / f"engine-{i}.log"
        try:
            # timeout: TensorRT builds its engines while the server loads
            with serve(command(plan, base, port, engine, flags[2:]), f"http://127.0.0.1:{port}/health/ready",
                       log, timeout=600) as server:  # fmt: skip
                entry["rows"] = sweep(name, "image", port, server.pid, base, payloads, plan.engine_concurrency, bar)
            entry.update(notes(log))
        except (RuntimeError, TimeoutError) as exc:
            bar.update(len(plan.engine_concurrency))
            entry["skipped"] = server_error(log, exc)
        entries.append(entry)
    baseline = {r["concurrency"]: r["qps"] for r in entries[0].get("rows", [])}
    for row in (r for e in entries for r in e.get("rows", [])):
        row["ratio_to_paddle_fp32"] = round(row["qps"] / baseline[row["concurrency"]], 3) if baseline else None
    return entries


def run_workers(plan: GpuPlan, base: Plan, payloads: Payloads, logs: Path, bar: tqdm) -> list[dict[str, Any]]:
    """--thread N servers one after another, onnxruntime, default batching, at plan.worker_concurrency."""
    rows: list[dict[str, Any]] = []
    for count in plan.worker_counts:
        port, log = free_port(), logs / f"workers-{count}.log"
        gpu = ["--gpu_ids", "0"] if plan.device == "gpu" else []
        try:
            with serve([*server_command(base, port, "onnxruntime", count), *gpu],
                       f"http://127.0.0.1:{port}/health/ready", log, timeout=600) as server:  # fmt: skip
                (row,) = sweep("segserving", "image", port, server.pid, base, payloads, [plan.worker_concurrency], bar)
            rows.append({"workers": count, **row})
        except (RuntimeError, TimeoutError) as exc:
            bar.update(1)
            rows.append({"workers": count, "skipped": server_error(log, exc)})
    return rows


def markdown(results: dict[str, Any]) -> str:
    plan, m, batching = results["plan"], results["machine"], results["batching"]
    gpu = "; ".join(f"{g['name']} ({g['memory']}, driver {g['driver']})" for g in m["gpus"]) or "none"
    parts = [f"# {plan['model']} on {results['device']}" + (" (a check of the script, not GPU results)"
                                                            if results["device"] == "cpu" else ""),
             f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; GPU: {gpu}. Packages: "
             + ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v) + f". Started {results['started']}; "
             f"{plan['duration']:g} s per load run, {plan['thread']} worker(s) per server, image API (JPEG).",
             f"## Dynamic batching, onnxruntime, concurrency {plan['concurrency']} (both servers up, load "
             f"alternated A B B A ..., {plan['rounds']} rounds; medians)"]  # fmt: skip
    if "skipped" in batching:
        parts.append(f"Skipped: {batching['skipped']}")
    else:
        parts += [md_table(batching["rows"], ["server", "flags", "qps", "p50_ms", "p99_ms", "mean_batch", "errors"]),
                  f"Batched / batch 1: **{batching['ratio']}x** (median of per-round ratios "
                  f"{batching['round_ratios']})."]  # fmt: skip
    rows = []
    for entry in results["engines"]:
        for row in entry.get("rows") or [{"qps": "skipped: " + entry.get("skipped", "")}]:
            rows.append({**row, "engine": entry["engine"], "flags": entry["flags"]})
    parts += [f"## Engines, one server at a time (ratio: to {next(iter(ENGINES))} at the same concurrency)",
              md_table(rows, ["engine", "flags", "concurrency", "qps", "p50_ms", "p99_ms", "errors",
                               "ratio_to_paddle_fp32"])]  # fmt: skip
    parts += [f"## Workers per GPU (--thread N, onnxruntime, default batching, concurrency "
              f"{plan['worker_concurrency']})",
              md_table(results["workers"], ["workers", "qps", "p50_ms", "p99_ms", "errors", "server_cpu_percent",
                                            "client_cpu_percent", "server_rss_mib"])]  # fmt: skip
    sweep = results["engine_sweep"]
    columns = ("input", "batch", "img_per_s", "p50_ms", "p99_ms", "on_device_img_per_s", "on_device_p50_ms",
               "copies_share")  # fmt: skip
    parts += [f"## The engine alone vs batch size (onnxruntime in one process, {plan['sweep_seconds']:g} s per size; "
              "on a GPU 'on device' keeps input and output in GPU memory, and copies_share is the part of the "
              "time the host <-> device copies take)",
              md_table(sweep, [k for k in columns if k in (sweep[0] if sweep else {})])]  # fmt: skip
    logged = [*batching.get("rows", []), *(e for e in results["engines"] if "worker" in e)]
    parts += ["## What the servers logged", "\n".join(f"- {e.get('server') or e['engine']}: {e['worker']}; engine "
                                                   f"errors: {'; '.join(e['engine_errors']) or 'none'}"
                                                   for e in logged)]  # fmt: skip
    return "\n\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="portrait", help="a repository name or a model directory")
    parser.add_argument("--device", default="gpu", choices=("gpu", "cpu"), help="cpu: a check of this script")
    parser.add_argument("--duration", type=float, default=None, help="seconds per load run (default 10; quick 2)")
    parser.add_argument("--rounds", type=int, default=None, help="alternated batching rounds (default 3; quick 1)")
    parser.add_argument("--thread", type=int, default=1, help="workers per server (default 1)")
    parser.add_argument("--batch_timeout_ms", type=float, default=GpuPlan.batch_timeout_ms, help="batched server")
    parser.add_argument("--engine_batch_size", type=int, default=GpuPlan.engine_batch_size, help="engine servers")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--repository", default=None)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round, 2 s per load run, small sweep")
    args = parser.parse_args(argv)
    found, why = gpus()
    if args.device == "gpu" and not found:
        print(f"benchmarks.gpu: no GPU visible: {why}. Run with --device cpu to check the script.", file=sys.stderr)
        return 2
    plan = GpuPlan(model=args.model, device=args.device, thread=args.thread, out=args.out,
                   duration=args.duration or (2.0 if args.quick else 10.0),
                   rounds=args.rounds or (1 if args.quick else 3), batch_timeout_ms=args.batch_timeout_ms,
                   engine_batch_size=args.engine_batch_size)  # fmt: skip
    if args.quick:
        plan.sweep_batches, plan.sweep_seconds, plan.worker_counts, plan.worker_concurrency = [1, 2, 4], 0.5, [1, 2], 4
    repo = ModelRepository(Path(args.repository)) if args.repository else ModelRepository()
    spec = repo.resolve(plan.model)
    ref = str(spec.server_dir.parent) if Path(plan.model).is_dir() else plan.model
    plan.model = spec.name
    base = Plan(model=spec.name, model_ref=ref, thread=plan.thread, duration=plan.duration)
    out = Path(plan.out)
    stem = f"{'gpu' if plan.device == 'gpu' else 'cpu-check'}-{plan.model}"
    logs = out / f"{stem}-logs"
    logs.mkdir(parents=True, exist_ok=True)
    payloads = prepare(spec, logs / "payloads")
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    with tqdm(total=2 * plan.rounds + len(ENGINES) * len(plan.engine_concurrency) + len(plan.worker_counts),
              desc="gpu benchmark",
              unit="run") as bar:  # fmt: skip
        sweep = engine_sweep.sweep(spec, plan.device, plan.sweep_batches, plan.sweep_seconds)
        batching = run_batching(plan, base, payloads, logs, bar)
        engines = run_engines(plan, base, payloads, logs, bar)
        workers = run_workers(plan, base, payloads, logs, bar)
    results = {"plan": asdict(plan), "device": plan.device, "started": started, "batching": batching,
               "engines": engines, "workers": workers, "engine_sweep": sweep,
               "machine": {**machine(), "gpus": found, "packages": versions()}}  # fmt: skip
    (out / f"{stem}.json").write_text(json.dumps(results, indent=1, default=str))
    (out / f"{stem}.md").write_text(text := markdown(results))
    print(f"{text}\nresults in {out / stem}.json and .md; server logs in {logs}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
