"""Run one of convert's modules in a child process (for steps that may abort or need other Paddle flags)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)


def run_module(module: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m module args...` with this checkout importable; output captured as text."""
    child_env = dict(os.environ, **(env or {}))
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, child_env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-m", module, *args], env=child_env, capture_output=True, text=True, check=False
    )
