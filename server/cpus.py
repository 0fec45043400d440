"""How many CPUs this process may really use: its affinity mask (taskset, Kubernetes' static CPU manager),
capped by a cgroup CPU quota (a container's --cpus, a pod's CPU limit). os.cpu_count() counts the host's."""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def affinity() -> int:
    """CPUs in this process's affinity mask (all of them where the OS has no such call)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _cgroup_paths(proc_cgroup: Path) -> dict[str, str]:
    """Controller -> this process's cgroup path ('' for the unified v2 hierarchy), from /proc/self/cgroup."""
    paths: dict[str, str] = {}
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return paths
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cgroup_quota(root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> float | None:
    """The CPU quota in CPUs (e.g. 1.5), or None without one. cgroup v2 `cpu.max` ("QUOTA PERIOD" or "max ...")
    or v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`, at this process's cgroup (or the root a container sees)."""
    paths = _cgroup_paths(proc_cgroup)
    for directory in dict.fromkeys([root / paths.get("", "/").lstrip("/"), root]):
        text = _read(directory / "cpu.max")
        if text:
            limit, _, period = text.partition(" ")
            return None if limit == "max" else int(limit) / int(period or 100000)
    for directory in dict.fromkeys([root / "cpu" / paths.get("cpu", "/").lstrip("/"), root / "cpu"]):
        quota_text, period_text = _read(directory / "cpu.cfs_quota_us"), _read(directory / "cpu.cfs_period_us")
        if quota_text is not None and period_text:
            micros = int(quota_text)
            return None if micros < 0 else micros / int(period_text)
    return None


def available() -> int:
    """Whole CPUs this process may use: the affinity mask, capped by the quota rounded up (at least 1)."""
    count = affinity()
    quota = cgroup_quota()
    if quota is not None:
        count = min(count, max(1, math.ceil(quota)))
    return count
