"""benchmarks.report: the targets name the limit the server is held to (the independent pipeline)."""

from __future__ import annotations

from typing import Any

from benchmarks.report import markdown, targets


def _results(limit: str) -> dict[str, Any]:
    image = [{"system": "segserving", "protocol": "image", "mode": "closed", "concurrency": c, "qps": q, "p50_ms": 5.0,
              "p99_ms": 8.0} for c, q in ((1, 90.0), (8, 180.0))]  # fmt: skip
    limits = [{"system": f"in-process limit ({limit})", "procs": p, "qps": q, "p50_ms": 6.0, "p99_ms": 9.0}
              for p, q in ((2, 200.0), (1, 110.0))]  # fmt: skip
    added = {"protocol": "image", "baseline": limit, "pairs": 400, "in_process_p50_ms": 7.0, "served_p50_ms": 8.5,
             "added_ms": 1.5, "paired_median_ms": 1.4}  # fmt: skip
    return {"plan": {"thread": 2, "model": "portrait", "engine": "onnxruntime", "duration": 10.0},
            "machine": {"cpu": "x", "cores": 2, "memory_gib": 8, "python": "3.11"}, "started": "now",
            "payload_bytes": {"jpeg": 99000}, "rows": image, "limits": limits, "added_latency": [added],
            "saturation": {"concurrency": 8, "procs": 2, "limit": limit, "ratio": 0.9, "round_ratios": [0.9],
                           "a_runs": [{"qps": 180.0}], "b_runs": [{"qps": 200.0}]}}  # fmt: skip


def test_the_saturation_and_latency_targets_name_the_independent_limit() -> None:
    results = _results("independent")
    found = {t["target"]: t for t in targets(results)}
    saturation = found["served / independent limit"]
    assert saturation["value"] == 0.9 and saturation["met"] is True
    assert "alternated with the independent limit in 2 processes" in saturation["detail"]
    latency = found["added p50 latency at concurrency 1 (image API)"]
    assert "by the independent pipeline in-process" in latency["detail"] and latency["met"] is False
    results["targets"] = targets(results)
    assert "| segserving image API, concurrency 8 | independent limit, 2 processes |" in markdown(results)


def test_a_worker_code_limit_says_so() -> None:
    results = _results("worker")
    names = [t["target"] for t in targets(results)]
    assert "served / in-process limit (worker code)" in names
    del results["saturation"]
    (fallback,) = [t for t in targets(results) if t["target"].startswith("served / ")]
    assert fallback["target"] == "served / in-process limit (worker code)" and fallback["value"] == 0.9
