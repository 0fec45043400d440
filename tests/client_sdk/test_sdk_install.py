"""`pip install <repo>` (no extras) into a fresh virtual environment gives a working client without paddle or
onnxruntime. Needs PyPI; takes minutes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sdk_support import encoded, photo_rgb
from servers import ServerProcess, start_server

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
W, H = 301, 199
# what a checkout may hold besides the sources: never part of the install
NOT_SOURCES = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", "*.pyc", ".pytest_cache",
                                     ".ruff_cache", ".venv", "workdir_*")  # fmt: skip


def clean_env() -> dict[str, str]:
    """The environment without anything that would make this checkout or the test's own packages importable."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PYTHONNOUSERSITE"] = "1"
    return env


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the project installed from a copy of this checkout (the build writes build/ and *.egg-info
    next to the sources; the copy keeps them out of the checkout)."""
    base = tmp_path_factory.mktemp("sdk-install")
    source = base / "segserving-src"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCES)
    subprocess.run([sys.executable, "-m", "venv", str(base / "venv")], cwd=base, env=clean_env(), check=True,
                   timeout=300)  # fmt: skip
    python = base / "venv" / "bin" / "python"
    proc = subprocess.run([str(python), "-m", "pip", "install", "--no-input", str(source)], cwd=base, env=clean_env(),
                          capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return python


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with start_server(tmp_path_factory.mktemp("sdk-install-server"), "--thread", "1") as srv:
        yield srv


def run_in(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the venv's python from its own folder (outside the checkout)."""
    return subprocess.run([str(python), *args], cwd=python.parents[2], env=clean_env(), capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip


@pytest.mark.parametrize("package", ["paddlepaddle", "onnxruntime"])
def test_heavy_packages_are_not_installed(venv: Path, package: str) -> None:
    assert run_in(venv, "-m", "pip", "show", package).returncode != 0
    module = {"paddlepaddle": "paddle", "onnxruntime": "onnxruntime"}[package]
    proc = run_in(venv, "-c", f"import {module}")
    assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr


def test_the_client_comes_from_the_install_and_imports_nothing_heavy(venv: Path) -> None:
    code = ("import sys, client_sdk; print(client_sdk.__file__); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'paddle', 'onnxruntime', 'cv2', 'server', "
            "'convert', 'fastapi'}))")  # fmt: skip
    proc = run_in(venv, "-c", code)
    assert proc.returncode == 0, proc.stderr
    where, heavy = proc.stdout.splitlines()
    assert Path(where).is_relative_to(venv.parents[1]) and "site-packages" in where
    assert not Path(where).is_relative_to(ROOT)
    assert heavy == "[]"


def test_segment_from_the_fresh_venv(venv: Path, server: ServerProcess, tmp_path: Path) -> None:
    image = tmp_path / "person.jpg"
    image.write_bytes(encoded(photo_rgb(W, H), "JPEG"))
    code = f"import client_sdk; print(client_sdk.SegClient('{server.address}').segment({str(image)!r}).label_map.shape)"
    proc = run_in(venv, "-c", code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"({H}, {W})"


def test_the_installed_segserving_command(venv: Path, server: ServerProcess, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "person.png").write_bytes(encoded(photo_rgb(W, H), "PNG"))
    command = venv.parent / "segserving"  # the console script pip wrote
    version = subprocess.run([str(command), "--version"], env=clean_env(), capture_output=True, text=True,
                             timeout=60, check=False)  # fmt: skip
    assert version.returncode == 0 and version.stdout.strip() == "segserving 0.1.0", version.stderr
    proc = subprocess.run([str(command), "segment", str(tmp_path / "in"), "--server", server.address, "-o",
                           str(tmp_path / "out"), "--output", "cutout", "--no-progress"], cwd=venv.parents[2],
                          env=clean_env(), capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1].startswith("1 images: 1 written")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["person.png.png"]
    serve = subprocess.run([str(command), "serve"], cwd=venv.parents[2], env=clean_env(), capture_output=True,
                           text=True, timeout=60, check=False)  # fmt: skip
    assert serve.returncode == 1 and "[server] extra" in serve.stderr and "Traceback" not in serve.stderr


def test_the_server_names_its_extra_instead_of_a_traceback(venv: Path) -> None:
    """The SDK install carries the server's code but not its packages: one line, exit 1."""
    proc = run_in(venv, "-m", "server.start", "--port", "0")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    line = proc.stderr.strip()
    assert "\n" not in line and "[server] extra" in line and "pip install 'segserving[server]'" in line, line
