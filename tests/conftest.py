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


def _no_cuda_reason() -> str:
    """'' when an NVIDIA GPU answers and onnxruntime has its CUDA provider, else why the gpu tests skip."""
    try:
        smi = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"no NVIDIA GPU (nvidia-smi: {exc})"
    if smi.returncode != 0 or "GPU" not in smi.stdout:
        return "no NVIDIA GPU (nvidia-smi -L lists none)"
    try:
        import onnxruntime
    except ImportError:
        return "onnxruntime is not installed"
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        return "this onnxruntime has no CUDA provider (install onnxruntime-gpu)"
    return ""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked gpu skip, with the reason, where no CUDA GPU is usable."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    reason = _no_cuda_reason() if gpu_items else ""
    for item in gpu_items if reason else []:
        item.add_marker(pytest.mark.skip(reason=f"gpu: {reason}"))
