"""Shared test helpers: child-process environment and the converter CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The Python that runs servers, the converter and the model builder: this one, or another environment's (CI runs
# the SDK's tests in an SDK-only venv, with these tools from the full test venv).
TOOLS_PYTHON = os.environ.get("SEGSERVING_TEST_TOOLS_PYTHON") or sys.executable


def child_env(**extra: str) -> dict[str, str]:
    """Environment for child processes that import this checkout."""
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def run_convert(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m convert ARGS` in a child process, output captured."""
    return subprocess.run(
        [TOOLS_PYTHON, "-m", "convert", *map(str, args)],
        cwd=cwd,
        env=child_env(),
        capture_output=True,
        text=True,
        check=False,
    )
