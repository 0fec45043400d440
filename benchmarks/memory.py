"""Resident memory of a served model: the front process and each worker, at idle and under load, read from the
server's own /metrics (segserving_memory_rss_bytes{process="front" | "MODEL/INDEX"})."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

import httpx

_LINE = re.compile(r'^segserving_memory_rss_bytes\{process="([^"]+)"\} (\S+)$')


def snapshot(port: int, model: str) -> dict[str, Any]:
    """{"front_mib", "workers_mib": [...], "total_mib"} now."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    found = {m.group(1): float(m.group(2)) / 2**20 for m in map(_LINE.match, text.splitlines()) if m}
    workers = [round(v, 1) for k, v in sorted(found.items(), key=lambda kv: kv[0]) if k.startswith(f"{model}/")]
    front = round(found.get("front", 0.0), 1)
    return {"front_mib": front, "workers_mib": workers, "total_mib": round(front + sum(workers), 1)}


def during(run: Callable[[], dict[str, Any]], port: int, model: str, after_s: float) -> dict[str, Any]:
    """Run `run` (a load run returning its row) and take a snapshot `after_s` seconds into it."""
    taken: dict[str, Any] = {}
    timer = threading.Timer(after_s, lambda: taken.update(snapshot(port, model)))
    timer.start()
    try:
        row = run()
    finally:
        timer.cancel()
    if not taken:
        raise RuntimeError(f"the load run ended before the memory snapshot at {after_s} s")
    return {**taken, "concurrency": row.get("concurrency"), "qps": row["qps"], "errors": row["errors"]}
