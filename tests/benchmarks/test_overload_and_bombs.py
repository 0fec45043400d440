"""`python -m benchmarks overload` and `bombs` in small runs: they write their outputs (never a speed check)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers import ROOT, child_env


def run(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=ROOT, env=child_env(),
                          capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_overload_writes_goodput_per_level_and_the_headline_ratio(tmp_path: Path) -> None:
    out = tmp_path / "overload"
    run("overload", "--rounds", "1", "--duration", "1", "--levels", "1,4", "--unloaded", "1", "--overloaded", "4",
        "--out", str(out))  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    labels = [row["label"] for row in results["levels"]]
    assert labels == [1, 4, "whole-second hints"]
    for row in results["levels"]:
        assert row["goodput"] > 0 and len(row["runs"]) == 1
        assert row["attempts_per_request"] >= 1.0
    (ratio,) = results["headline"]["round_ratios"]
    assert ratio > 0 and results["headline"]["ratio_median"] == round(ratio, 2)
    assert (out / "overload.png").stat().st_size > 0
    assert "retrying clients" in (out / "results.md").read_text()


def test_bombs_are_refused_and_measured(tmp_path: Path) -> None:
    out = tmp_path / "bombs"
    run("bombs", "--gzip_mib", "600", "--out", str(out))
    cases = json.loads((out / "results.json").read_text())["cases"]
    assert [c["status"] for c in cases] == [413, 413, 413, 413, 413, 413, 431]
    for case in cases:
        assert case["peak_extra_mib"] >= 0 and case["seconds"] > 0
