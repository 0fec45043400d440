"""`python -m benchmarks.run --quick`: the smoke run CI does (it checks the outputs, never the speed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers import ROOT, child_env


def test_quick_benchmark_writes_json_markdown_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--out", str(out)],
        cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert [(r["system"], r["procs"]) for r in results["limits"]] == [
        ("in-process limit (independent)", 2), ("in-process limit (independent)", 1), ("in-process limit (worker)", 2),
        ("in-process limit (inference)", 2), ("in-process limit (inference)", 1)]  # fmt: skip
    served = [r for r in results["rows"] if r["system"] == "segserving"]
    assert {(r["protocol"], r["mode"]) for r in served} == {
        ("image", "closed"),
        ("ps-grpc", "closed"),
        ("image", "open"),
    }
    for row in served:
        assert row["requests"] > 0 and row["errors"] == {}
        assert row["p50_ms"] <= row["p99_ms"] <= row["max_ms"]
        assert row["bytes_per_request"] > 0
    naive = [r for r in results["rows"] if r["system"] == "naive"]
    assert naive and naive[0].get("requests", 0) > 0, naive
    added = {r["protocol"]: r for r in results["added_latency"]}
    assert set(added) == {"image", "ps-grpc"}
    for row in added.values():
        assert row["pairs"] > 0 and row["in_process_p50_ms"] > 0 and row["served_p50_ms"] > 0
        assert abs(row["added_ms"] - (row["served_p50_ms"] - row["in_process_p50_ms"])) < 0.002  # rounding
        assert row["baseline"] == "independent"
    saturation = results["saturation"]
    best = max((r for r in served if r["protocol"] == "image" and r["mode"] == "closed"), key=lambda r: r["qps"])
    assert saturation["concurrency"] == best["concurrency"]
    assert len(saturation["a_runs"]) == len(saturation["b_runs"]) == 1
    assert saturation["b_runs"][0]["system"] == "in-process limit (independent)" and saturation["ratio"] > 0
    assert saturation["limit"] == "independent"
    (duel,) = results["versus"]
    assert (duel["a"], duel["b"], duel["concurrency"]) == ("segserving (onnxruntime)", "naive (onnxruntime)", 8)
    assert len(duel["a_runs"]) == len(duel["b_runs"]) == len(duel["round_ratios"]) == 1
    assert duel["ratio"] == round(duel["a_runs"][0]["qps"] / duel["b_runs"][0]["qps"], 3)
    assert results["machine"]["cores"] >= 1
    markdown = (out / "results.md").read_text()
    assert "| segserving | image | closed |" in markdown
    assert "| segserving (onnxruntime) | naive (onnxruntime) |" in markdown
    assert f"| segserving image API, concurrency {best['concurrency']} | independent limit, 2 processes |" in markdown
    assert (out / "latency_throughput.png").read_bytes().startswith(b"\x89PNG")
    for state in ("idle", "under_load"):  # the front and every worker, from the server's /metrics
        rss = results["memory"][state]
        assert rss["front_mib"] > 0 and len(rss["workers_mib"]) == results["plan"]["thread"], rss
        assert all(w > 0 for w in rss["workers_mib"])
        assert abs(rss["total_mib"] - rss["front_mib"] - sum(rss["workers_mib"])) < 0.2
    assert results["memory"]["under_load"]["qps"] > 0 and results["memory"]["under_load"]["errors"] == {}
    assert "## Resident memory" in markdown
