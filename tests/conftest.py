"""Shared fixtures: tiny real Paddle models built at test time, and converted copies of them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
for shared in (ROOT / "tests", ROOT / "tests" / "server"):  # helpers.py, modelbuilder.py, servers.py
    sys.path.insert(0, str(shared))

from helpers import TOOLS_PYTHON, child_env, run_convert  # noqa: E402


@pytest.fixture(scope="session")
def build_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """build_model(kind) -> an export dir made by tests/modelbuilder.py (built once per session)."""
    cache: dict[str, Path] = {}

    def build(kind: str) -> Path:
        if kind not in cache:
            out = tmp_path_factory.mktemp(f"export-{kind}") / kind
            proc = subprocess.run(
                [TOOLS_PYTHON, str(ROOT / "tests" / "modelbuilder.py"), kind, str(out)],
                env=child_env(),
                capture_output=True,
                text=True,
                check=False,
            )
            assert proc.returncode == 0, proc.stderr[-2000:]
            cache[kind] = out
        return cache[kind]

    return build


@pytest.fixture(scope="session")
def converted(build_model: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """converted(kind) -> a repository entry dir (serving_server/ + serving_client/) for that tiny model."""
    cache: dict[str, Path] = {}

    def convert(kind: str) -> Path:
        if kind not in cache:
            entry = tmp_path_factory.mktemp(f"repo-{kind}") / kind
            proc = run_convert(
                "--dirname",
                build_model(kind),
                "--serving_server",
                entry / "serving_server",
                "--serving_client",
                entry / "serving_client",
            )
            assert proc.returncode == 0, proc.stderr[-2000:]
            cache[kind] = entry
        return cache[kind]

    return convert
