"""`python -m benchmarks.run`: the in-process limit, SegServing over every protocol, and the peers, on one
machine in one run; writes results.json, results.md and latency_throughput.png."""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks import memory, paired, report
from benchmarks.limit import LimitSpec, limit_mode, limit_runs
from benchmarks.limit import measure as measure_limit
from benchmarks.loadgen import Spec, summarize
from benchmarks.paired import PS_GRPC, SEGMENT_GRPC, LatencySpec, alternate
from benchmarks.payloads import Payloads, prepare
from benchmarks.procs import Usage, free_port, machine, python, sample, serve
from segcore.repository import ModelRepository, ModelSpec

PROTOCOLS = ("image", "image-grpc", "sdk", "ps-proto", "ps-grpc", "ps-json", "oip-grpc", "oip-http", "oip-image-grpc")
PEERS = ("naive", "litserve", "ray")
OIP_INFER = "/inference.GRPCInferenceService/ModelInfer"


@dataclass
class Plan:
    """What to run."""

    model: str = "portrait"
    model_ref: str = ""  # what --model named (a repository name or a directory); model is its served name
    engine: str = "onnxruntime"
    thread: int = 2
    concurrency: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16, 32])
    duration: float = 10.0
    protocols: list[str] = field(default_factory=lambda: list(PROTOCOLS))
    peers: list[str] = field(default_factory=lambda: list(PEERS))
    peer_concurrency: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16])
    open_loop: list[float] = field(default_factory=lambda: [0.5, 0.8])  # fractions of the best closed-loop QPS
    thread_scaling: bool = True
    rounds: int = 3  # alternated rounds of each head-to-head comparison
    latency_protocols: list[str] = field(default_factory=lambda: list(paired.PROTOCOLS))
    soak: float = 0.0
    image_size: tuple[int, int] | None = None  # (width, height) of the photo; None: the 512x512 original
    out: str = "benchmarks/results/portrait-cpu"
    direct_http: bool = False  # SegServing's workers serve HTTP themselves (server --direct_http)


def loadgen(spec: Spec, server_pid: int) -> tuple[dict[str, Any], Usage]:
    """Run the load generator in its own process while sampling the server's process tree: its raw outcome and
    the server's usage."""
    with sample(server_pid) as usage:
        proc = subprocess.run(python("-m", "benchmarks.loadgen", json.dumps(asdict(spec))), capture_output=True,
                              text=True, check=False, timeout=spec.duration + spec.warmup + 300)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout), usage


def load(spec: Spec, server_pid: int) -> dict[str, Any]:
    """One load run: summary, server CPU and peak RSS."""
    outcome, usage = loadgen(spec, server_pid)
    row = summarize(outcome)
    row.update(server_cpu_percent=round(usage.mean_cpu, 1), server_rss_mib=round(usage.max_rss, 1))
    return row


def limit(spec: ModelSpec, plan: Plan, payloads: Payloads, procs: int, mode: str) -> dict[str, Any]:
    """One in-process limit run (benchmarks.limit, `mode`) in `procs` processes: img/s and latency."""
    return measure_limit(LimitSpec(str(spec.server_dir), plan.engine, procs, plan.duration, 1.0, str(payloads.jpeg),
                                    mode))  # fmt: skip


def protocol_spec(protocol: str, port: int, plan: Plan, payloads: Payloads) -> Spec:
    target = f"127.0.0.1:{port}"
    table = {
        "image": Spec("http", target, f"/v1/models/{plan.model}/segment", str(payloads.jpeg), "image/jpeg"),
        "image-grpc": Spec("grpc", target, SEGMENT_GRPC, str(payloads.segment_proto)),
        "sdk": Spec("sdk-image", target, "", str(payloads.jpeg), model=plan.model),
        "ps-proto": Spec("http", target, "/GeneralModelService/inference", str(payloads.ps_proto), "application/proto"),
        "ps-grpc": Spec("grpc", target, PS_GRPC, str(payloads.ps_proto)),
        "ps-json": Spec("http", target, "/GeneralModelService/inference", str(payloads.ps_json), "application/json"),
        "oip-grpc": Spec("grpc", target, OIP_INFER, str(payloads.oip_grpc)),
        "oip-http": Spec(
            "http",
            target,
            f"/v2/models/{plan.model}/infer",
            str(payloads.oip_http),
            "application/octet-stream",
            headers={"Inference-Header-Content-Length": str(payloads.oip_http_header)},
        ),
        "oip-image-grpc": Spec("grpc", target, OIP_INFER, str(payloads.oip_image_grpc)),
        "naive": Spec("http", target, "/predict", str(payloads.peer_json), "application/json"),
        "litserve": Spec("http", target, "/predict", str(payloads.peer_json), "application/json"),
        "ray": Spec("http", target, "/predict", str(payloads.peer_json), "application/json"),
    }
    spec = table[protocol]
    spec.duration = plan.duration
    spec.warmup = min(2.0, max(0.5, plan.duration / 5))
    return spec


def server_command(plan: Plan, port: int, engine: str, thread: int) -> list[str]:
    model = plan.model_ref or plan.model
    return python("-m", "server.start", "--model", model, "--port", str(port), "--host", "127.0.0.1",
                  "--thread", str(thread), "--engine", engine, "--max_queue", "1024",
                  "--workdir", f"/tmp/segserving-bench-{port}",
                  *(["--direct_http"] if plan.direct_http else []))  # fmt: skip


def sweep(name: str, protocol: str, port: int, pid: int, plan: Plan, payloads: Payloads, levels: list[int],
          bar: tqdm) -> list[dict[str, Any]]:  # fmt: skip
    rows = []
    for concurrency in levels:
        spec = protocol_spec(protocol, port, plan, payloads)
        spec.concurrency = concurrency
        row = {"system": name, "protocol": protocol, "mode": "closed", "concurrency": concurrency}
        row.update(load(spec, pid))
        rows.append(row)
        bar.update(1)
    return rows


def run_segserving(spec: ModelSpec, plan: Plan, payloads: Payloads, out: Path,
                   bar: tqdm) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:  # fmt: skip
    """The protocol sweeps, the open loop, and the saturation ratio: the image API at its best concurrency
    alternated with the independent in-process limit (the server idles meanwhile) for plan.rounds rounds."""
    port, rows = free_port(), []
    saturation = None
    with serve(server_command(plan, port, plan.engine, plan.thread), f"http://127.0.0.1:{port}/health/ready",
               out / "server.log") as server:  # fmt: skip
        for protocol in plan.protocols:
            rows += sweep("segserving", protocol, port, server.pid, plan, payloads, plan.concurrency, bar)
        image = [r for r in rows if r["protocol"] == "image"]
        best = max(image, key=lambda r: r["qps"], default=None)
        for fraction in plan.open_loop if best else []:
            load_spec = protocol_spec("image", port, plan, payloads)
            load_spec.mode, load_spec.rate, load_spec.concurrency = "open", round(best["qps"] * fraction, 1), 8
            row = {"system": "segserving", "protocol": "image", "mode": "open", "rate": load_spec.rate,
                   "load_fraction": fraction}  # fmt: skip
            row.update(load(load_spec, server.pid))
            rows.append(row)
            bar.update(1)
        if best:
            served = protocol_spec("image", port, plan, payloads)
            served.concurrency = best["concurrency"]
            mode = limit_mode(spec.server_dir, plan.engine)
            saturation = {"concurrency": best["concurrency"], "procs": plan.thread, "limit": mode, **alternate(
                lambda: load(served, server.pid), lambda: limit(spec, plan, payloads, plan.thread, mode),
                plan.rounds, lambda: bar.update(1))}  # fmt: skip
    return rows, saturation


def run_memory(plan: Plan, payloads: Payloads, out: Path, bar: tqdm) -> dict[str, Any]:
    """RSS of the front and each worker: idle after a few requests, then halfway into a load run at
    concurrency 8 on the image API."""
    port = free_port()
    with serve(server_command(plan, port, plan.engine, plan.thread), f"http://127.0.0.1:{port}/health/ready",
               out / "server-memory.log") as server:  # fmt: skip
        spec = protocol_spec("image", port, plan, payloads)
        spec.concurrency, spec.duration = 2, 1.0
        load(spec, server.pid)  # every worker has served requests
        time.sleep(1.0)
        idle = memory.snapshot(port, plan.model)
        spec.concurrency, spec.duration = 8, plan.duration
        busy = memory.during(lambda: {"concurrency": 8, **load(spec, server.pid)}, port, plan.model, plan.duration / 2)
    bar.update(1)
    return {"idle": idle, "under_load": busy}


def run_added_latency(spec: ModelSpec, plan: Plan, payloads: Payloads, out: Path, bar: tqdm) -> list[dict[str, Any]]:
    """Concurrency 1, each protocol's request alternated with the same work in-process (benchmarks.limit's mode)."""
    port, rows, baseline = free_port(), [], limit_mode(spec.server_dir, plan.engine)
    with serve(server_command(plan, port, plan.engine, 1), f"http://127.0.0.1:{port}/health/ready",
               out / "server-latency.log"):  # fmt: skip
        for protocol in plan.latency_protocols:
            latency = LatencySpec(str(spec.server_dir.parent), plan.model, f"127.0.0.1:{port}", protocol,
                                  str(payloads.jpeg), str(payloads.ps_proto), str(payloads.segment_proto), plan.engine,
                                  plan.duration, min(2.0, max(0.5, plan.duration / 5)), baseline)  # fmt: skip
            proc = subprocess.run(python("-m", "benchmarks.paired", json.dumps(asdict(latency))), capture_output=True,
                                  text=True, check=False, timeout=plan.duration + 600)  # fmt: skip
            if proc.returncode != 0:
                raise RuntimeError(f"added-latency run failed: {proc.stderr[-2000:]}")
            rows.append(json.loads(proc.stdout))
            bar.update(1)
    return rows


def peer_command(peer: str, plan: Plan, port: int, engine: str) -> list[str]:
    module = {"naive": "naive", "litserve": "litserve_app", "ray": "ray_serve_app"}[peer]
    command = python("-m", f"benchmarks.peers.{module}", "--model", plan.model_ref or plan.model, "--engine", engine,
                     "--port", str(port))  # fmt: skip
    if peer == "litserve":
        return [*command, "--workers", str(plan.thread)]
    if peer == "ray":
        return [*command, "--replicas", str(plan.thread)]
    return [*command, "--response", "label_png"]  # base64 JSON in and out, as the tutorials do


def idle_cpu(pid: int, seconds: float = 3.0) -> float:
    """CPU of an idle server's process tree (so that a server left up beside another is known not to steal)."""
    with sample(pid) as usage:
        time.sleep(seconds)
    return round(usage.mean_cpu, 1)


def head_to_head(name_a: str, a: tuple[Spec, int], name_b: str, b: tuple[Spec, int], plan: Plan,
                 bar: tqdm) -> dict[str, Any]:  # fmt: skip
    """Closed loop at concurrency 8 against two servers that are both up, alternated for plan.rounds rounds."""
    for spec, _ in (a, b):
        spec.concurrency = 8
    idle = {name_a: idle_cpu(a[1]), name_b: idle_cpu(b[1])}
    result = alternate(lambda: load(*a), lambda: load(*b), plan.rounds, lambda: bar.update(1))
    return {"a": name_a, "b": name_b, "concurrency": 8, "idle_cpu_percent": idle, **result}


def run_versus(plan: Plan, payloads: Payloads, out: Path, bar: tqdm) -> list[dict[str, Any]]:
    """SegServing's image API against each peer on the same engine, alternated."""
    port, rows = free_port(), []
    with serve(server_command(plan, port, plan.engine, plan.thread), f"http://127.0.0.1:{port}/health/ready",
               out / "server-versus.log") as server:  # fmt: skip
        for peer in plan.peers:
            peer_port = free_port()
            try:
                with serve(peer_command(peer, plan, peer_port, plan.engine), f"http://127.0.0.1:{peer_port}/health",
                           out / f"{peer}-versus.log") as process:  # fmt: skip
                    ours = (protocol_spec("image", port, plan, payloads), server.pid)
                    theirs = (protocol_spec(peer, peer_port, plan, payloads), process.pid)
                    rows.append(head_to_head(f"segserving ({plan.engine})", ours, f"{peer} ({plan.engine})",
                                             theirs, plan, bar))  # fmt: skip
            except (RuntimeError, TimeoutError) as exc:
                bar.update(2 * plan.rounds)
                rows.append({"a": f"segserving ({plan.engine})", "b": f"{peer} ({plan.engine})", "skipped": str(exc)})
    return rows


def run_peer(peer: str, plan: Plan, payloads: Payloads, out: Path, bar: tqdm) -> list[dict[str, Any]]:
    port = free_port()
    try:
        command = peer_command(peer, plan, port, plan.engine)
        with serve(command, f"http://127.0.0.1:{port}/health", out / f"{peer}.log") as process:
            return sweep(peer, peer, port, process.pid, plan, payloads, plan.peer_concurrency, bar)
    except (RuntimeError, TimeoutError) as exc:
        bar.update(len(plan.peer_concurrency))
        return [{"system": peer, "skipped": str(exc)}]


def run_thread_scaling(spec: ModelSpec, plan: Plan, payloads: Payloads, out: Path, bar: tqdm) -> dict[str, Any]:
    """Paddle engine: --thread 2 vs --thread 1 and vs the naive peer on Paddle, all up at once, alternated; and
    the in-process Paddle limit with 1 and 2 processes (the most that 2 workers can gain on this machine)."""
    paddle = Plan(**{**asdict(plan), "engine": "paddle"})
    limits = [limit(spec, paddle, payloads, procs, "worker") for procs in (1, 2)]
    bar.update(2)
    ports = {1: free_port(), 2: free_port(), "naive": free_port()}
    with contextlib.ExitStack() as stack:
        pids = {t: stack.enter_context(serve(server_command(plan, ports[t], "paddle", t),
                                             f"http://127.0.0.1:{ports[t]}/health/ready",
                                             out / f"server-paddle-{t}.log")).pid for t in (1, 2)}  # fmt: skip
        naive = serve(peer_command("naive", paddle, ports["naive"], "paddle"),
                      f"http://127.0.0.1:{ports['naive']}/health", out / "naive-paddle.log")  # fmt: skip
        pids["naive"] = stack.enter_context(naive).pid
        side = {t: (protocol_spec("image", ports[t], plan, payloads), pids[t]) for t in (1, 2)}
        side["naive"] = (protocol_spec("naive", ports["naive"], plan, payloads), pids["naive"])
        threads = head_to_head("segserving paddle --thread 2", side[2], "segserving paddle --thread 1", side[1],
                               plan, bar)  # fmt: skip
        versus_naive = head_to_head("segserving (paddle)", side[2], "naive (paddle)", side["naive"], plan, bar)
    return {"limits": limits, "threads": threads, "versus_naive": versus_naive}


def run_soak(plan: Plan, payloads: Payloads, out: Path) -> dict[str, Any]:
    """Saturating load for plan.soak seconds; RSS of the server tree at the start and the end."""
    port = free_port()
    with serve(server_command(plan, port, plan.engine, plan.thread), f"http://127.0.0.1:{port}/health/ready",
               out / "server-soak.log") as server:  # fmt: skip
        spec = protocol_spec("image", port, plan, payloads)
        spec.concurrency, spec.duration, spec.warmup = 8, plan.soak, 30.0
        with sample(server.pid, interval=5.0) as usage:
            row = load(spec, server.pid)
    rss = usage.rss_mib
    head = rss[: max(1, len(rss) // 10)]
    tail = rss[-max(1, len(rss) // 10) :]
    return {"seconds": plan.soak, "rss_start_mib": round(statistics.mean(head), 1),
            "rss_end_mib": round(statistics.mean(tail), 1),
            "rss_growth_mib": round(statistics.mean(tail) - statistics.mean(head), 1), "load": row}  # fmt: skip


def _size(text: str, parser: argparse.ArgumentParser) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    if not (width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
        parser.error(f"--image_size: {text!r} is not WIDTHxHEIGHT")
    return int(width), int(height)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--model", default="portrait")
    parser.add_argument("--engine", default="onnxruntime", choices=("onnxruntime", "paddle"))
    parser.add_argument("--thread", type=int, default=2, help="server workers = limit processes (default 2)")
    parser.add_argument("--concurrency", default="1,2,4,8,16,32")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--protocols", default=",".join(PROTOCOLS))
    parser.add_argument("--peers", default=",".join(PEERS), help="naive,litserve,ray or '' for none")
    parser.add_argument("--no-thread-scaling", dest="thread_scaling", action="store_false")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds per head-to-head (default 3)")
    parser.add_argument("--soak", type=float, default=0.0, help="also run a saturating soak of this many seconds")
    parser.add_argument("--quick", action="store_true", help="smoke run in under 2 minutes (no targets judged)")
    parser.add_argument("--out", default=None, help="results folder (default benchmarks/results/MODEL-cpu)")
    parser.add_argument("--repository", default=None)
    parser.add_argument("--image_size", default=None, help="WIDTHxHEIGHT of the photo (default: 512x512 as is)")
    parser.add_argument("--direct_http", action="store_true", help="run SegServing with --direct_http")
    parser.add_argument("--only", choices=["latency"], default=None,
                        help="re-measure only the added latency, into the results already in --out")  # fmt: skip
    args = parser.parse_args(argv)
    size = _size(args.image_size, parser) if args.image_size else None
    plan = Plan(model=args.model, engine=args.engine, thread=args.thread,
                concurrency=[int(c) for c in args.concurrency.split(",")], duration=args.duration,
                protocols=[p for p in args.protocols.split(",") if p], peers=[p for p in args.peers.split(",") if p],
                thread_scaling=args.thread_scaling, rounds=args.rounds, soak=args.soak, image_size=size,
                out=args.out or f"benchmarks/results/{args.model}-cpu", direct_http=args.direct_http)  # fmt: skip
    if args.quick:
        plan.concurrency, plan.peer_concurrency, plan.duration = [1, 4], [4], 2.0
        plan.protocols, plan.peers, plan.open_loop, plan.thread_scaling = ["image", "ps-grpc"], ["naive"], [0.5], False
        plan.rounds, plan.latency_protocols = 1, ["image", "ps-grpc"]
    out = Path(plan.out)
    out.mkdir(parents=True, exist_ok=True)
    repo = ModelRepository(Path(args.repository)) if args.repository else ModelRepository()
    spec = repo.resolve(plan.model)
    plan.model_ref, plan.model = str(spec.server_dir.parent) if Path(plan.model).is_dir() else plan.model, spec.name
    payloads = prepare(spec, out / "payloads", plan.image_size)
    if args.only == "latency":
        return remeasure_latency(spec, plan, payloads, out)
    planned = limit_runs(limit_mode(spec.server_dir, plan.engine), plan.thread)
    steps = (1 + len(planned) + len(plan.protocols) * len(plan.concurrency) + len(plan.open_loop)
             + len(plan.latency_protocols)
             + (2 * plan.rounds if "image" in plan.protocols else 0)
             + len(plan.peers) * (len(plan.peer_concurrency) + 2 * plan.rounds)
             + (2 + 4 * plan.rounds if plan.thread_scaling else 0))  # fmt: skip
    started = time.time()
    with tqdm(total=steps, desc="benchmark", unit="run") as bar:
        in_process = []
        for procs, mode in planned:
            in_process.append(limit(spec, plan, payloads, procs, mode))
            bar.update(1)
        rows, saturation = run_segserving(spec, plan, payloads, out, bar)
        added = run_added_latency(spec, plan, payloads, out, bar)
        rss = run_memory(plan, payloads, out, bar)
        for peer in plan.peers:
            rows += run_peer(peer, plan, payloads, out, bar)
        versus = run_versus(plan, payloads, out, bar)
        scaling = run_thread_scaling(spec, plan, payloads, out, bar) if plan.thread_scaling else None
    soak = run_soak(plan, payloads, out) if plan.soak else None
    results = {"plan": asdict(plan), "machine": machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z",
               time.localtime(started)), "limits": in_process, "rows": rows, "saturation": saturation,
               "added_latency": added, "memory": rss, "versus": versus, "thread_scaling": scaling, "soak": soak,
               "payload_bytes": {k: v.stat().st_size for k, v in asdict(payloads).items()
                                 if isinstance(v, Path)}}  # fmt: skip
    results["targets"] = [] if args.quick else report.targets(results)
    report.write(results, out)
    print(f"results in {out}/ (results.json, results.md, latency_throughput.png)")
    return 0


def remeasure_latency(spec: ModelSpec, plan: Plan, payloads: Payloads, out: Path) -> int:
    """Measure the added latency again and put it in place of the one in `out`/results.json (the rest of that run
    stays as it was; the new part's start time is recorded beside it)."""
    path = out / "results.json"
    if not path.is_file():
        print(f"error: --only needs an earlier full run in {out}/ (no results.json)", file=sys.stderr)
        return 2
    results = json.loads(path.read_text())
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    with tqdm(total=len(plan.latency_protocols), desc="added latency", unit="run") as bar:
        results["added_latency"] = run_added_latency(spec, plan, payloads, out, bar)
    results.setdefault("remeasured", {})["added_latency"] = started
    results["targets"] = report.targets(results)
    report.write(results, out)
    print(f"added latency replaced in {out}/results.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
