"""Targets, Markdown table and latency/throughput plot from one benchmark run."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any


def _rows(results: dict[str, Any], **match: Any) -> list[dict[str, Any]]:
    return [r for r in results["rows"] if all(r.get(k) == v for k, v in match.items())]


def _one(results: dict[str, Any], **match: Any) -> dict[str, Any] | None:
    rows = _rows(results, **match)
    return rows[0] if rows else None


def _limit(results: dict[str, Any], procs: int) -> dict[str, Any]:
    """The limit the server is held to (the first row: the independent pipeline, or the worker's code) at `procs`."""
    return next(r for r in results["limits"] if r["system"] == results["limits"][0]["system"] and r["procs"] == procs)


def _limit_name(mode: str) -> str:
    return "independent limit" if mode == "independent" else f"in-process limit ({mode} code)"


def _target(name: str, value: float | None, goal: str, met: bool | None, detail: str) -> dict[str, Any]:
    return {"target": name, "value": None if value is None else round(value, 3), "goal": goal,
            "met": met, "detail": detail}  # fmt: skip


def _duel(name: str, duel: dict[str, Any], goal: float) -> dict[str, Any]:
    """A head-to-head target: the median per-round ratio of A's throughput to B's."""
    if "skipped" in duel:
        return _target(name, None, "", None, duel["skipped"])
    a = statistics.median(r["qps"] for r in duel["a_runs"])
    b = statistics.median(r["qps"] for r in duel["b_runs"])
    return _target(name, duel["ratio"], f">= {goal:g}x" if goal > 1 else "> 1x",
                   duel["ratio"] >= goal if goal > 1 else duel["ratio"] > 1.0,
                   f"median {a:.1f} vs {b:.1f} img/s; per-round ratios {duel['round_ratios']} "
                   f"(both servers up, alternated)")  # fmt: skip


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each issue target with its measured value and whether it was met (None = not measured)."""
    thread = results["plan"]["thread"]
    out = []
    image_rows = _rows(results, system="segserving", protocol="image", mode="closed")
    best = max(image_rows, key=lambda r: r["qps"], default=None)
    limit_all = _limit(results, thread)
    saturation = results.get("saturation")
    if saturation:
        served = statistics.median(r["qps"] for r in saturation["a_runs"])
        alone = statistics.median(r["qps"] for r in saturation["b_runs"])
        name = _limit_name(saturation.get("limit", "worker"))
        detail = (f"median {served:.1f} vs {alone:.1f} img/s; per-round ratios {saturation['round_ratios']} (image "
                  f"API at concurrency {saturation['concurrency']}, its best in the sweep, alternated with the {name} "
                  f"in {saturation['procs']} processes)")  # fmt: skip
        ratio = saturation["ratio"]
        out.append(_target(f"served / {name}", ratio, ">= 0.90", ratio >= 0.9, detail))
    elif best:
        ratio, name = best["qps"] / limit_all["qps"], _limit_name(limit_all["system"].rsplit("(", 1)[1][:-1])
        out.append(_target(f"served / {name}", ratio, ">= 0.90", ratio >= 0.9,
                           f"{best['qps']} vs {limit_all['qps']} img/s (image API, concurrency "
                           f"{best['concurrency']}; limit: {thread} processes)"))  # fmt: skip
    names = {"image": "image API", "image-grpc": "image over gRPC", "ps-grpc": "Paddle Serving gRPC, tensors",
             "ps-proto": "Paddle Serving HTTP protobuf, tensors"}  # fmt: skip
    for row in results.get("added_latency") or []:
        added = row["added_ms"]
        side = "the worker's code" if row.get("baseline", "worker") == "worker" else "the independent pipeline"
        out.append(_target(f"added p50 latency at concurrency 1 ({names[row['protocol']]})", added, "<= 1 ms",
                           added <= 1.0, f"{row['served_p50_ms']} ms served vs {row['in_process_p50_ms']} ms for the "
                           f"same work by {side} in-process, alternated over {row['pairs']} pairs (median of the pair "
                           f"differences {row['paired_median_ms']} ms)"))  # fmt: skip
    for duel in results.get("versus") or []:
        peer = duel["b"].split(" ")[0]
        out.append(_duel(f"throughput vs {duel['b']} at concurrency 8", duel, 2.0 if peer == "naive" else 1.0))
    scaling = results.get("thread_scaling") or {}
    if scaling:
        out.append(_duel("throughput vs naive (paddle) at concurrency 8", scaling["versus_naive"], 2.0))
    light = [r for r in image_rows if r["concurrency"] <= thread] + _rows(results, protocol="image", mode="open")
    if light:
        worst = max(light, key=lambda r: r["p99_ms"] / r["p50_ms"])
        ratio = worst["p99_ms"] / worst["p50_ms"]
        where = f"concurrency {worst['concurrency']}" if worst["mode"] == "closed" else f"open loop {worst['rate']}/s"
        out.append(_target("p99 / p50 below saturation (worst case)", ratio, "<= 1.5", ratio <= 1.5,
                           f"{worst['p99_ms']} / {worst['p50_ms']} ms at {where}"))  # fmt: skip
    if scaling:
        one, two = (next(r for r in scaling["limits"] if r["procs"] == n) for n in (1, 2))
        detail = (f"median of {len(scaling['threads']['round_ratios'])} alternated rounds "
                  f"{scaling['threads']['round_ratios']}; the in-process Paddle limit itself scales "
                  f"{two['qps'] / one['qps']:.2f}x ({two['qps']} vs {one['qps']} img/s, 2 vs 1 processes)")  # fmt: skip
        ratio = scaling["threads"]["ratio"]
        out.append(_target("--thread 2 / --thread 1 (Paddle engine)", ratio, ">= 1.7", ratio >= 1.7, detail))
    soak = results.get("soak")
    if soak:
        growth = soak["rss_growth_mib"]
        out.append(
            _target(
                "RSS growth at saturation",
                growth,
                "<= 50 MiB",
                growth <= 50,
                f"{soak['rss_start_mib']} -> {soak['rss_end_mib']} MiB over {soak['seconds']:.0f} s",
            )
        )
    image1 = _one(results, system="segserving", protocol="image", mode="closed", concurrency=1)
    json1 = _one(results, system="segserving", protocol="ps-json", mode="closed", concurrency=1)
    if image1 and json1:
        ratio = json1["bytes_per_request"] / image1["bytes_per_request"]
        out.append(
            _target(
                "wire bytes: Paddle Serving float JSON / image API",
                ratio,
                "> 20",
                ratio > 20,
                f"{json1['bytes_per_request']} vs {image1['bytes_per_request']} bytes per request",
            )
        )
    return out


def md_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "0"
    if value is True:
        return "met"
    if value is False:
        return "**missed**"
    return "" if value is None else str(value)


def markdown(results: dict[str, Any]) -> str:
    m, plan = results["machine"], results["plan"]
    parts = [
        f"# Benchmark: `{plan['model']}` on {plan['engine']}, {plan['thread']} workers"
        + (" (`--direct_http`)" if plan.get("direct_http") else ""),
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}. "
        f"Load generator on the same cores. Started {results['started']}; {plan['duration']:g} s per point. "
        f"Photo: {'x'.join(map(str, plan.get('image_size') or (512, 512)))} JPEG "
        f"({results['payload_bytes']['jpeg'] / 1000:.0f} KB).",
    ]
    if results["targets"]:
        parts += ["## Targets", md_table(results["targets"], ["target", "value", "goal", "met", "detail"])]
    parts += ["## In-process limit", md_table(results["limits"], ["system", "procs", "qps", "p50_ms", "p99_ms"])]
    columns = [
        "system",
        "protocol",
        "mode",
        "concurrency",
        "rate",
        "qps",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "max_ms",
        "errors",
        "bytes_per_request",
        "server_cpu_percent",
        "client_cpu_percent",
        "server_rss_mib",
    ]
    parts += ["## Served", md_table([r for r in results["rows"] if "qps" in r], columns)]
    skipped = [r for r in results["rows"] if "skipped" in r]
    if skipped:
        parts += ["Skipped: " + "; ".join(f"{r['system']}: {r['skipped']}" for r in skipped)]
    if results.get("added_latency"):
        parts += ["## Added latency at concurrency 1 (served vs the same work in-process, alternated)",
                  md_table(results["added_latency"], ["protocol", "baseline", "pairs", "in_process_p50_ms",
                                                       "served_p50_ms", "added_ms", "paired_median_ms"])]  # fmt: skip
    if results.get("memory"):
        rss = results["memory"]
        rows = [{"state": state, "front_mib": m["front_mib"], "workers_mib": ", ".join(map(str, m["workers_mib"])),
                 "total_mib": m["total_mib"], "img_per_s": m.get("qps", "")}
                for state, m in (("idle", rss["idle"]), ("under load, concurrency 8", rss["under_load"]))]  # fmt: skip
        parts += ["## Resident memory (the server's /metrics: front and each worker)",
                  md_table(rows, ["state", "front_mib", "workers_mib", "total_mib", "img_per_s"])]  # fmt: skip
    duels = [*(results.get("versus") or [])]
    if results.get("saturation"):
        sat = results["saturation"]
        duels.insert(0, {**sat, "a": f"segserving image API, concurrency {sat['concurrency']}",
                         "b": f"{_limit_name(sat.get('limit', 'worker'))}, {sat['procs']} processes"})  # fmt: skip
    if results.get("thread_scaling"):
        duels += [results["thread_scaling"]["threads"], results["thread_scaling"]["versus_naive"]]
        parts += [
            "## In-process limit, Paddle engine",
            md_table(results["thread_scaling"]["limits"], ["system", "procs", "qps", "p50_ms", "p99_ms"]),
        ]
    if duels:
        parts += ["## Head to head (A/B throughput; runs alternated A B B A ..., servers up throughout; peers and "
                  "thread counts at concurrency 8)",
                  md_table([_duel_row(d) for d in duels], ["a", "b", "ratio", "round_ratios", "a_qps", "b_qps",
                                                           "idle_cpu_percent"])]  # fmt: skip
    if results.get("soak"):
        soak = results["soak"]
        parts += [f"## Soak\n{soak['seconds']:.0f} s at concurrency 8: RSS {soak['rss_start_mib']} -> "
                  f"{soak['rss_end_mib']} MiB ({soak['rss_growth_mib']:+} MiB), {soak['load']['qps']} img/s, "
                  f"errors {soak['load']['errors'] or 0}."]  # fmt: skip
    return "\n\n".join(parts) + "\n"


def _duel_row(duel: dict[str, Any]) -> dict[str, Any]:
    if "skipped" in duel:
        return {"a": duel["a"], "b": duel["b"], "ratio": "skipped: " + duel["skipped"]}
    qps = {side: ", ".join(str(r["qps"]) for r in duel[f"{side}_runs"]) for side in ("a", "b")}
    return {**duel, "round_ratios": ", ".join(map(str, duel["round_ratios"])), "a_qps": qps["a"], "b_qps": qps["b"]}


def plot(results: dict[str, Any], path: Path) -> None:
    """p50 (solid) and p99 (dashed) latency against throughput, one curve per system and protocol."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5.5))
    curves: dict[str, list[dict[str, Any]]] = {}
    for row in results["rows"]:
        if row.get("mode") == "closed" and "qps" in row:
            curves.setdefault(f"{row['system']} / {row['protocol']}", []).append(row)
    for i, (label, rows) in enumerate(sorted(curves.items())):
        rows.sort(key=lambda r: r["concurrency"])
        color = f"C{i % 10}"
        ax.plot([r["qps"] for r in rows], [r["p50_ms"] for r in rows], "o-", color=color, label=label)
        ax.plot([r["qps"] for r in rows], [r["p99_ms"] for r in rows], ":", color=color)
    held = results["limits"][0]["system"]
    limit = max((r for r in results["limits"] if r["system"] == held), key=lambda r: r["qps"])
    ax.axvline(limit["qps"], color="k", linestyle="--", label=f"{held} ({limit['qps']:.0f}/s)")
    ax.set_xlabel("throughput (requests/s)")
    ax.set_ylabel("latency (ms): p50 solid, p99 dotted")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    plan = results["plan"]
    ax.set_title(f"{plan['model']} on {plan['engine']}, {plan['thread']} workers, {results['machine']['cores']} cores")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(results: dict[str, Any], out: Path) -> None:
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    (out / "results.md").write_text(markdown(results))
    plot(results, out / "latency_throughput.png")
