"""`python -m benchmarks.gpu`: the CPU check run writes its JSON and Markdown (it checks the outputs, never the
speed), and `--device gpu` refuses to run where no GPU is visible."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, child_env


def _gpu_benchmark(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "benchmarks.gpu", *args], cwd=ROOT, env=child_env(),
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip


def _nvidia_smi_works() -> bool:
    try:
        return subprocess.run(["nvidia-smi", "-L"], capture_output=True, timeout=60, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def test_cpu_check_run_writes_batching_and_engine_results(tmp_path: Path) -> None:
    proc = _gpu_benchmark("--device", "cpu", "--quick", "--duration", "1", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "cpu-check-portrait.json").read_text())
    assert results["device"] == "cpu" and results["machine"]["cores"] >= 1
    assert results["machine"]["packages"]["onnxruntime"]
    batching = results["batching"]
    assert "skipped" not in batching, batching.get("skipped")
    assert isinstance(batching["ratio"], float) and batching["ratio"] > 0 and len(batching["round_ratios"]) == 1
    assert [r["flags"] for r in batching["rows"]] == ["--batch_size 8 --batch_timeout_ms 2", "--batch_size 1"]
    for row in batching["rows"]:
        assert isinstance(row["qps"], float) and row["qps"] > 0 and row["errors"] == {}
        assert row["p50_ms"] <= row["p99_ms"]
    assert batching["rows"][1]["mean_batch"] == 1.0
    engines = {e["engine"]: e for e in results["engines"]}
    assert list(engines) == ["paddle fp32", "onnxruntime", "paddle + TensorRT fp16"]
    for name in ("paddle fp32", "onnxruntime"):
        rows = engines[name]["rows"]
        assert [r["concurrency"] for r in rows] == [1, 16]
        assert all(r["qps"] > 0 and r["errors"] == {} and r["ratio_to_paddle_fp32"] > 0 for r in rows)
    assert all(r["ratio_to_paddle_fp32"] == 1.0 for r in engines["paddle fp32"]["rows"])
    trt = engines["paddle + TensorRT fp16"]
    assert "rows" not in trt and "build has no CUDA" in trt["skipped"], trt  # the server's own reason, from its log
    assert [(w["workers"], w["concurrency"]) for w in results["workers"]] == [(1, 4), (2, 4)]
    assert all(w["qps"] > 0 and w["errors"] == {} for w in results["workers"])
    sweep = results["engine_sweep"]
    assert [r["batch"] for r in sweep] == [1, 2, 4] and all(r["img_per_s"] > 0 for r in sweep)
    assert "on_device_p50_ms" not in sweep[0]  # the on-device lower bound is a GPU-only measurement
    markdown = (tmp_path / "cpu-check-portrait.md").read_text()
    assert "## Workers per GPU" in markdown and "## The engine alone vs batch size" in markdown
    assert "not GPU results" in markdown and "| batch 1 | --batch_size 1 |" in markdown
    assert not list(tmp_path.glob("gpu-*"))


@pytest.mark.skipif(_nvidia_smi_works(), reason="a GPU is visible here")
def test_device_gpu_without_a_gpu_exits_2_with_one_line(tmp_path: Path) -> None:
    proc = _gpu_benchmark("--device", "gpu", "--out", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.startswith("benchmarks.gpu: no GPU visible: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr and not list(tmp_path.iterdir())
