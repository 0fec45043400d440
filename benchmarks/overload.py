"""`python -m benchmarks overload`: goodput against offered load, with a small queue and a short deadline.

One server (`--max_queue 8 --request_timeout_ms 200` by default) and the light load generator in its own process.
Each level is N closed-loop clients that send a request again on 429/503 the way the SDK does (its RetryPolicy:
3 retries, jittered backoff added to the server's Retry-After-Ms hint, within a 30 s budget). Goodput is answers
with status 200 per second. Levels run in alternating order over several rounds; the table gives medians, and the
headline is the per-round ratio of goodput at `--overloaded` clients to goodput at `--unloaded` clients.
The `whole-second hints` row runs the overloaded level with clients that only read the standard Retry-After
header (whole seconds, as generic HTTP clients do), for comparison. Writes results.json, results.md, overload.png.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.loadgen import Spec
from benchmarks.payloads import prepare
from benchmarks.procs import free_port, python, serve
from benchmarks.run import loadgen, machine, summarize
from segcore.repository import ModelRepository


def measure(spec: Spec, server_pid: int) -> dict[str, Any]:
    """One load run: goodput, latency of the successes (first attempt to answer), refusals and final failures."""
    outcome, usage = loadgen(spec, server_pid)
    row = summarize(outcome)
    answered = row["requests"] + sum(outcome["errors"].values())
    return {
        "goodput": row["qps"],
        "p50_ms": row["p50_ms"],
        "p99_ms": row["p99_ms"],
        "failed": outcome["errors"],
        "failed_share": round(sum(outcome["errors"].values()) / answered, 3) if answered else 0.0,
        "retried": outcome["refusals"],
        "attempts_per_request": round((answered + sum(outcome["refusals"].values())) / answered, 2) if answered else 0,
        "client_cpu_percent": row["client_cpu_percent"],
        "server_cpu_percent": round(usage.mean_cpu, 1),
        "server_rss_mib": round(usage.max_rss, 1),
    }


def median_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("goodput", "p50_ms", "p99_ms", "failed_share", "attempts_per_request", "server_cpu_percent")
    return {k: round(statistics.median(r[k] for r in runs), 2) for k in keys}


def markdown(results: dict[str, Any]) -> str:
    plan, head = results["plan"], results["headline"]
    lines = [
        f"Server: `--max_queue {plan['max_queue']} --request_timeout_ms {plan['request_timeout_ms']} "
        f"--thread {plan['thread']}`, model {plan['model']}, {plan['rounds']} rounds of {plan['duration']} s per "
        f"level, medians. Machine: {results['machine']['cpu']}, {results['machine']['cores']} cores (shared with "
        "the load generator).",
        "",
        f"**Goodput at {plan['overloaded']} retrying clients = {head['ratio_median']}x the goodput at "
        f"{plan['unloaded']} clients** (per-round ratios {', '.join(map(str, head['round_ratios']))}; goal >= 0.7).",
        "",
        "| clients | goodput (img/s) | p50 ms | p99 ms | failed after retries | attempts per request | server CPU % |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["levels"]:
        lines.append(f"| {row['label']} | {row['goodput']} | {row['p50_ms']} | {row['p99_ms']} | "
                     f"{row['failed_share'] * 100:.1f}% | {row['attempts_per_request']} | "
                     f"{row['server_cpu_percent']} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    """Goodput (median and each round) and p99 latency against the number of retrying clients."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = [r for r in results["levels"] if isinstance(r["label"], int)]
    clients = [r["label"] for r in levels]
    fig, ax = plt.subplots(figsize=(8, 5))
    for i, runs in enumerate(zip(*(r["runs"] for r in levels), strict=True)):
        ax.plot(clients, [run["goodput"] for run in runs], ".", color="C0", alpha=0.4,
                label="each round" if i == 0 else None)  # fmt: skip
    ax.plot(clients, [r["goodput"] for r in levels], "o-", color="C0", label="goodput (median)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(clients, [str(c) for c in clients])
    ax.set_xlabel("closed-loop clients, each retrying as the SDK does")
    ax.set_ylabel("goodput (successful images/s)")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    right = ax.twinx()
    right.plot(clients, [r["p99_ms"] for r in levels], "s--", color="C3", label="p99 latency of successes")
    right.set_ylabel("p99 ms (first attempt to answer)")
    right.set_ylim(bottom=0)
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="lower right", fontsize=8)
    plan = results["plan"]
    ax.set_title(f"Overload: --max_queue {plan['max_queue']} --request_timeout_ms {plan['request_timeout_ms']}, "
                 f"{results['machine']['cores']} cores")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks overload", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--model", default="portrait")
    parser.add_argument("--thread", type=int, default=2)
    parser.add_argument("--max_queue", type=int, default=8)
    parser.add_argument("--request_timeout_ms", type=int, default=200)
    parser.add_argument("--levels", default="1,2,4,8,16,32,64", help="clients per level")
    parser.add_argument("--unloaded", type=int, default=4)
    parser.add_argument("--overloaded", type=int, default=32)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per level")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/overload")
    args = parser.parse_args(argv)
    levels = sorted({int(x) for x in args.levels.split(",")} | {args.unloaded, args.overloaded})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    spec = ModelRepository().resolve(args.model)
    payloads = prepare(spec, out / "payloads")
    port = free_port()
    command = python("-m", "server.start", "--model", args.model, "--port", str(port), "--host", "127.0.0.1",
                     "--thread", str(args.thread), "--max_queue", str(args.max_queue),
                     "--request_timeout_ms", str(args.request_timeout_ms),
                     "--workdir", f"/tmp/segserving-overload-{port}")  # fmt: skip

    def load(clients: int, hints: str = "ms") -> Spec:
        return Spec("http", f"127.0.0.1:{port}", f"/v1/models/{spec.name}/segment", str(payloads.jpeg), "image/jpeg",
                    concurrency=clients, duration=args.duration, warmup=1.0, retries=3, retry_hint=hints)  # fmt: skip

    runs: dict[Any, list[dict[str, Any]]] = {level: [] for level in levels}
    runs["whole-second hints"] = []
    started = time.time()
    with (
        serve(command, f"http://127.0.0.1:{port}/health/ready", out / "server.log") as server,
        tqdm(total=args.rounds * (len(levels) + 1), desc="overload", unit="run") as bar,
    ):
        for round_ in range(args.rounds):
            order = levels if round_ % 2 == 0 else levels[::-1]
            for level in order:
                runs[level].append(measure(load(level), server.pid))
                bar.update(1)
            runs["whole-second hints"].append(measure(load(args.overloaded, "seconds"), server.pid))
            bar.update(1)
    ratios = [round(o["goodput"] / u["goodput"], 3) if u["goodput"] else 0.0
              for o, u in zip(runs[args.overloaded], runs[args.unloaded], strict=True)]  # fmt: skip
    results = {
        "plan": {**vars(args), "levels": levels},
        "machine": machine(),
        "elapsed_s": round(time.time() - started),
        "headline": {"ratio_median": round(statistics.median(ratios), 2), "round_ratios": ratios, "goal": 0.7},
        "levels": [{"label": label, **median_row(rows), "runs": rows} for label, rows in runs.items()],
    }
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "results.md").write_text(markdown(results))
    plot(results, out / "overload.png")
    print(markdown(results))
    return 0
