"""server.cpus: the CPUs a process may use, from its affinity mask and a cgroup quota (v1 and v2 layouts made
in a temporary directory, as a container or a pod shows them)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from test_start_cli import settings

from server import cpus


def proc_cgroup(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "proc-cgroup"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("cpu_max", "expected"), [("150000 100000", 1.5), ("max 100000", None), ("50000", 0.5)])
def test_cgroup_v2_quota(tmp_path: Path, cpu_max: str, expected: float | None) -> None:
    own = tmp_path / "kubepods" / "pod1"
    own.mkdir(parents=True)
    (own / "cpu.max").write_text(cpu_max + "\n")
    assert cpus.cgroup_quota(tmp_path, proc_cgroup(tmp_path, "0::/kubepods/pod1\n")) == expected


def test_cgroup_v2_at_the_root_a_container_sees(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("200000 100000\n")
    assert cpus.cgroup_quota(tmp_path, proc_cgroup(tmp_path, "0::/\n")) == 2.0


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    cpu = tmp_path / "cpu" / "docker" / "abc"
    cpu.mkdir(parents=True)
    (cpu / "cpu.cfs_quota_us").write_text("250000\n")
    (cpu / "cpu.cfs_period_us").write_text("100000\n")
    text = "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n"
    assert cpus.cgroup_quota(tmp_path, proc_cgroup(tmp_path, text)) == 2.5
    (cpu / "cpu.cfs_quota_us").write_text("-1\n")
    assert cpus.cgroup_quota(tmp_path, proc_cgroup(tmp_path, text)) is None


def test_no_cgroup_files_means_no_quota(tmp_path: Path) -> None:
    assert cpus.cgroup_quota(tmp_path, tmp_path / "missing") is None


def test_available_is_the_affinity_capped_by_the_quota() -> None:
    mask = len(os.sched_getaffinity(0))
    quota = cpus.cgroup_quota()
    expected = mask if quota is None else min(mask, max(1, -(-quota // 1)))
    assert cpus.available() == expected <= (os.cpu_count() or 1)


def test_default_workers_follow_the_available_cpus(caplog: pytest.LogCaptureFixture) -> None:
    (model,) = settings().models
    assert model.workers == cpus.available()
    with caplog.at_level(logging.WARNING, logger="server.cli"):
        settings("--thread", str(cpus.available() + 3))
    assert any("CPU(s) this process may use" in r.getMessage() for r in caplog.records)
