"""Targets, Markdown table and latency/throughput plot from one benchmark run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _rows(results: dict[str, Any], **match: Any) -> list[dict[str, Any]]:
    return [r for r in results["rows"] if all(r.get(k) == v for k, v in match.items())]


def _one(results: dict[str, Any], **match: Any) -> dict[str, Any] | None:
    rows = _rows(results, **match)
    return rows[0] if rows else None


def _limit(results: dict[str, Any], mode: str, procs: int) -> dict[str, Any]:
    return next(r for r in results["limits"] if r["system"].endswith(f"({mode})") and r["procs"] == procs)


def _target(name: str, value: float | None, goal: str, met: bool | None, detail: str) -> dict[str, Any]:
    return {"target": name, "value": None if value is None else round(value, 3), "goal": goal,
            "met": met, "detail": detail}  # fmt: skip


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each issue target with its measured value and whether it was met (None = not measured)."""
    thread = results["plan"]["thread"]
    out = []
    image_rows = _rows(results, system="segserving", protocol="image", mode="closed")
    best = max(image_rows, key=lambda r: r["qps"], default=None)
    limit_all, limit_one = _limit(results, "pipeline", thread), _limit(results, "pipeline", 1)
    if best:
        ratio = best["qps"] / limit_all["qps"]
        out.append(_target("served throughput / in-process limit", ratio, ">= 0.90", ratio >= 0.9,
                           f"{best['qps']} vs {limit_all['qps']} img/s (image API, concurrency "
                           f"{best['concurrency']}; limit: {thread} processes)"))  # fmt: skip
    for protocol, ref in (("image", limit_one), ("image-grpc", limit_one)):
        row = _one(results, system="segserving", protocol=protocol, mode="closed", concurrency=1)
        if row:
            added = row["p50_ms"] - ref["p50_ms"]
            out.append(_target(f"added p50 latency at concurrency 1 ({protocol})", added, "<= 1 ms", added <= 1.0,
                               f"{row['p50_ms']} ms served vs {ref['p50_ms']} ms in-process pipeline"))  # fmt: skip
    grpc_row = _one(results, system="segserving", protocol="ps-grpc", mode="closed", concurrency=1)
    if grpc_row:
        infer = _limit(results, "inference", 1)
        added = grpc_row["p50_ms"] - infer["p50_ms"]
        out.append(_target("added p50 latency at concurrency 1 (Paddle Serving gRPC, tensors)", added, "<= 1 ms",
                           added <= 1.0, f"{grpc_row['p50_ms']} ms served vs {infer['p50_ms']} ms in-process "
                           "inference (request parsing and response encoding included in served)"))  # fmt: skip
    ours8 = _one(results, system="segserving", protocol="image", mode="closed", concurrency=8)
    for peer, goal in (("naive", 2.0), ("litserve", 1.0)):
        theirs = _one(results, system=peer, concurrency=8)
        if ours8 and theirs and theirs.get("qps"):
            ratio = ours8["qps"] / theirs["qps"]
            out.append(_target(f"throughput vs {peer} at concurrency 8", ratio, f">= {goal:g}x" if goal > 1 else "> 1x",
                               ratio >= goal if goal > 1 else ratio > 1.0,
                               f"{ours8['qps']} vs {theirs['qps']} img/s"))  # fmt: skip
        elif _one(results, system=peer) and "skipped" in (_one(results, system=peer) or {}):
            out.append(_target(f"throughput vs {peer} at concurrency 8", None, "", None,
                               _one(results, system=peer)["skipped"]))  # fmt: skip
    light = [r for r in image_rows if r["concurrency"] <= thread] + _rows(results, protocol="image", mode="open")
    if light:
        worst = max(light, key=lambda r: r["p99_ms"] / r["p50_ms"])
        ratio = worst["p99_ms"] / worst["p50_ms"]
        where = f"concurrency {worst['concurrency']}" if worst["mode"] == "closed" else f"open loop {worst['rate']}/s"
        out.append(_target("p99 / p50 below saturation (worst case)", ratio, "<= 2", ratio <= 2.0,
                           f"{worst['p99_ms']} / {worst['p50_ms']} ms at {where}"))  # fmt: skip
    scaling = {r["thread"]: r for r in results.get("thread_scaling", [])}
    if 1 in scaling and 2 in scaling:
        ratio = scaling[2]["qps"] / scaling[1]["qps"]
        out.append(_target("--thread 2 / --thread 1 (Paddle engine)", ratio, ">= 1.7", ratio >= 1.7,
                           f"{scaling[2]['qps']} vs {scaling[1]['qps']} img/s at concurrency 8"))  # fmt: skip
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


def _md_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
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
        f"# Benchmark: `{plan['model']}` on {plan['engine']}, {plan['thread']} workers",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}. "
        f"Load generator on the same cores. Started {results['started']}; {plan['duration']:g} s per point.",
    ]
    if results["targets"]:
        parts += ["## Targets", _md_table(results["targets"], ["target", "value", "goal", "met", "detail"])]
    parts += ["## In-process limit", _md_table(results["limits"], ["system", "procs", "qps", "p50_ms", "p99_ms"])]
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
    parts += ["## Served", _md_table([r for r in results["rows"] if "qps" in r], columns)]
    skipped = [r for r in results["rows"] if "skipped" in r]
    if skipped:
        parts += ["Skipped: " + "; ".join(f"{r['system']}: {r['skipped']}" for r in skipped)]
    if results.get("thread_scaling"):
        parts += ["## Thread scaling (Paddle engine)", _md_table(results["thread_scaling"], columns)]
    if results.get("soak"):
        soak = results["soak"]
        parts += [f"## Soak\n{soak['seconds']:.0f} s at concurrency 8: RSS {soak['rss_start_mib']} -> "
                  f"{soak['rss_end_mib']} MiB ({soak['rss_growth_mib']:+} MiB), {soak['load']['qps']} img/s, "
                  f"errors {soak['load']['errors'] or 0}."]  # fmt: skip
    return "\n\n".join(parts) + "\n"


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
    limit = max((r for r in results["limits"] if "pipeline" in r["system"]), key=lambda r: r["qps"])
    ax.axvline(limit["qps"], color="k", linestyle="--", label=f"in-process limit ({limit['qps']:.0f}/s)")
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
