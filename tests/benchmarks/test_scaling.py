"""`python -m benchmarks.scaling`: cost per image vs photo size and batch size (it checks the outputs, never the
speed): one row per size and per batch, the worker's stage timings, and the plot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers import ROOT, child_env


def test_scaling_writes_rows_per_size_and_batch_and_a_plot(tmp_path: Path) -> None:
    plot = tmp_path / "plot.png"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.scaling", "--sizes", "160x120,640x480", "--batches", "1,2",
         "--seconds", "0.2", "--out", str(tmp_path), "--plot", str(plot)],
        cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (model,) = json.loads((tmp_path / "scaling.json").read_text())["models"]
    assert model["name"] == "portrait"
    assert [r["size"] for r in model["by_size"]] == ["160x120", "640x480"]
    for row in model["by_size"]:
        assert row["runs"] >= 3 and row["ms_per_image"] > 0
        assert {"preprocess_ms", "inference_ms", "postprocess_ms"} <= set(row)
    assert model["by_size"][0]["megapixels"] < model["by_size"][1]["megapixels"]
    assert [(r["batch"], r["input"]) for r in model["by_batch"]] == [(1, "1x3x256x256"), (2, "2x3x256x256")]
    for row in model["by_batch"]:
        assert row["ms_per_image"] == round(row["p50_ms"] / row["batch"], 2)
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert "## portrait: photo size" in (tmp_path / "scaling.md").read_text()
