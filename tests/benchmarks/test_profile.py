"""`python -m benchmarks profile`: the stage table of the worker's code vs the independent pipeline, with the
transport row from a served worker (it checks the outputs, never the speed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers import ROOT, child_env

from benchmarks.profile import STAGES, table

ROWS = (*STAGES, "worker total")


def _profile(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "benchmarks", "profile", *args], cwd=ROOT, env=child_env(),
                          capture_output=True, text=True, timeout=600, check=False)  # fmt: skip


def test_profile_prints_and_writes_every_stage_of_both_sides_and_the_transport(tmp_path: Path) -> None:
    out = tmp_path / "profile.json"
    proc = _profile("--size", "160x120", "--repeat", "3", "--requests", "5", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert (result["model"], result["size"], result["repeat"]) == ("portrait", [160, 120], 3)
    for side in ("ours", "independent", "ours thread", "independent thread"):
        assert set(result[side]) == set(ROWS), side
        assert all(ms >= 0 for ms in result[side].values())
        assert result[side]["engine"] > 0 and result[side]["worker total"] > 0
    transport = result["transport"]
    assert transport["requests"] == 5 and transport["server_cpu_ms_per_request"] > 0 and transport["latency_p50_ms"] > 0
    assert abs(transport["cpu_ms"] + result["ours"]["worker total"] - transport["server_cpu_ms_per_request"]) < 0.002
    assert set(result["notes"]) == set(STAGES) and "warpAffine" in result["notes"]["resize"]
    for stage in (*ROWS, "transport"):
        assert f"\n| {stage} | " in proc.stdout, stage
    assert str(out) in proc.stdout


def test_without_transport_the_table_has_no_transport_row(tmp_path: Path) -> None:
    out = tmp_path / "profile.json"
    proc = _profile("--size", "64x48", "--repeat", "2", "--no-transport", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert "transport" not in result and "| transport |" not in table(result)
    assert "| decode | " in table(result)


def test_the_command_is_listed() -> None:
    listing = subprocess.run([sys.executable, "-m", "benchmarks"], cwd=ROOT, env=child_env(), capture_output=True,
                             text=True, timeout=60, check=False)  # fmt: skip
    assert listing.returncode == 2 and "  profile " in listing.stderr
