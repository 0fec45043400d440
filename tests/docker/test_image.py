"""docker/Dockerfile builds an image that starts its own command and serves: health, a segmentation, an ID photo,
as a non-root user, without PaddlePaddle, within 700 MB.

Needs podman (or a docker daemon) and the python:3.11-slim base image, pulled or built locally
(../shared/tools/base-image.sh where no registry is reachable). Skipped without them, unless
SEGSERVING_REQUIRE_CONTAINER=1 (CI), where their absence fails the test.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from helpers import ROOT
from PIL import Image
from servers import free_port
from skimage import data

pytestmark = pytest.mark.slow

BASE_IMAGE = "python:3.11-slim"
TAG = "localhost/segserving:test"
MAX_BYTES = 700 * 10**6


def _unavailable(reason: str) -> None:
    if os.environ.get("SEGSERVING_REQUIRE_CONTAINER") == "1":
        pytest.fail(f"SEGSERVING_REQUIRE_CONTAINER=1 but {reason}")
    pytest.skip(reason)


def _tool() -> list[str]:
    """The container CLI: podman (with runc where it is installed: crun cannot set rlimits in some sandboxes), or
    docker when its daemon answers."""
    if shutil.which("podman"):
        return ["podman", "--runtime", "runc"] if shutil.which("runc") else ["podman"]
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "info"], capture_output=True, timeout=30, check=False).returncode == 0:
        return [docker]
    _unavailable("neither podman nor a running docker daemon is available")
    raise AssertionError  # unreachable: _unavailable raises


def run(tool: list[str], *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*tool, *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check:
        assert proc.returncode == 0, f"{' '.join(args[:3])}: {proc.stderr[-3000:]}"
    return proc


def _limits() -> list[str]:
    """Explicit rlimits at or below this machine's: runtimes otherwise set defaults of their own, which a sandboxed
    host may refuse ("error setting rlimit ... operation not permitted")."""
    caps = (("nofile", resource.RLIMIT_NOFILE, 65536), ("nproc", resource.RLIMIT_NPROC, 4096))
    return [f"{name}={v}:{v}" for name, which, cap in caps if (v := min(cap, resource.getrlimit(which)[0])) > 0]


@dataclass
class Container:
    tool: list[str]
    cid: str
    url: str

    def exec(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run(self.tool, "exec", self.cid, *args, check=False)


@pytest.fixture(scope="module")
def image() -> Iterator[tuple[list[str], str]]:
    tool = _tool()
    if (
        run(tool, "image", "inspect", BASE_IMAGE, check=False).returncode != 0
        and run(tool, "pull", BASE_IMAGE, timeout=600, check=False).returncode != 0
    ):
        _unavailable(f"the base image {BASE_IMAGE} is neither local nor pullable (without a registry, "
                     "../shared/tools/base-image.sh builds it)")  # fmt: skip
    build = ["build", "-f", "docker/Dockerfile", "-t", TAG, str(ROOT)]
    if tool[0] == "podman":  # chroot isolation builds where nested containers cannot start; docker format keeps
        build[1:1] = ["--isolation", "chroot", "--network", "host", "--format", "docker"]  # HEALTHCHECK
    proc = subprocess.run([tool[0], *build], cwd=ROOT, capture_output=True, text=True, timeout=1800, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    yield tool, TAG
    run(tool, "rmi", "-f", TAG, check=False)


@pytest.fixture(scope="module")
def container(image: tuple[list[str], str]) -> Iterator[Container]:
    """The image's own ENTRYPOINT + CMD, its port 9393 published on a free loopback port."""
    tool, tag = image
    port = free_port()
    limits = [f"--ulimit={limit}" for limit in _limits()]
    cid = run(tool, "run", "-d", "--no-healthcheck", *limits, "-p", f"127.0.0.1:{port}:9393", tag).stdout.strip()
    box = Container(tool, cid, f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{box.url}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            state = run(tool, "inspect", "--format", "{{.State.Running}}", cid).stdout.strip()
            assert state == "true", run(tool, "logs", cid).stdout[-3000:]
            assert time.monotonic() < deadline, "not ready after 180 s:\n" + run(tool, "logs", cid).stderr[-3000:]
            time.sleep(0.5)
        yield box
    finally:
        run(tool, "rm", "-f", cid, check=False)


def _photo() -> bytes:
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    assert ok
    return jpeg.tobytes()


def test_image_is_at_most_700_mb_and_keeps_its_healthcheck(image: tuple[list[str], str]) -> None:
    tool, tag = image
    size = int(run(tool, "image", "inspect", "--format", "{{.Size}}", tag).stdout)
    assert size <= MAX_BYTES, f"{size / 1e6:.0f} MB"
    health = run(tool, "image", "inspect", "--format", "{{json .Config.Healthcheck}}", tag).stdout
    assert "/health/ready" in health


def test_segments_a_photo(container: Container) -> None:
    reply = httpx.post(f"{container.url}/v1/models/portrait/segment", content=_photo(), timeout=60)
    assert reply.status_code == 200, reply.text
    labels = np.asarray(Image.open(io.BytesIO(reply.content)))
    assert labels.shape == (512, 512) and set(np.unique(labels).tolist()) == {0, 1}
    assert 0.1 < (labels == 1).mean() < 0.9  # the astronaut is a person, not the whole frame


def test_makes_an_id_photo(container: Container) -> None:
    reply = httpx.post(f"{container.url}/v1/id-photo", params={"background": "blue", "size": "1inch"},
                       content=_photo(), timeout=60)  # fmt: skip
    assert reply.status_code == 200, reply.text
    photo = Image.open(io.BytesIO(reply.content))
    assert photo.format == "JPEG" and photo.size == (295, 413)


def test_runs_as_a_user_without_paddle(container: Container) -> None:
    assert container.exec("id", "-u").stdout.strip() != "0"
    proc = container.exec("python", "-c", "import paddle")
    assert proc.returncode != 0 and "No module named 'paddle'" in proc.stderr
    assert container.exec("python", "-c", "import onnxruntime, idphoto, app.ui").returncode == 0


def test_compose_serves_the_mounted_repository_and_turns_healthy(image: tuple[list[str], str],
                                                                tmp_path: Path) -> None:  # fmt: skip
    """docker/compose.yaml as written (image and port by its variables): healthy, /models mounted read-only."""
    tool, tag = image
    compose = tool[0] == "podman"  # podman-compose, else docker's compose plugin
    if compose and importlib.util.find_spec("podman_compose") is None:
        _unavailable("podman-compose is not installed (pip install -e '.[dev]')")
    port, project = free_port(), f"segserving-test-{os.getpid()}"
    env = dict(os.environ, SEGSERVING_IMAGE=tag, SEGSERVING_PORT=str(port))
    if tool[1:] == ["--runtime", "runc"]:  # compose calls plain `podman run`: the same runtime and limits by config
        conf = tmp_path / "containers.conf"
        conf.write_text(f'[containers]\ndefault_ulimits = {json.dumps(_limits())}\n[engine]\nruntime = "runc"\n')
        env["CONTAINERS_CONF"] = str(conf)
    command = [sys.executable, "-m", "podman_compose"] if compose else [tool[0], "compose"]
    command += ["-p", project, "-f", str(ROOT / "docker" / "compose.yaml")]
    label = "io.podman.compose.project" if compose else "com.docker.compose.project"
    try:
        up = subprocess.run([*command, "up", "-d"], env=env, capture_output=True, text=True, timeout=300, check=False)
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
        cid = run(tool, "ps", "-q", "--filter", f"label={label}={project}").stdout.split()[0]
        deadline = time.monotonic() + 180
        while not _healthy(tool, cid):
            assert time.monotonic() < deadline, run(tool, "logs", cid, check=False).stderr[-3000:]
            time.sleep(1)
        assert httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=5).status_code == 200
        models = run(tool, "exec", cid, "ls", "/models").stdout.split()
        assert sorted(models) == sorted(p.name for p in (ROOT / "serving_models").iterdir() if p.name != "__pycache__")
        assert run(tool, "exec", cid, "touch", "/models/x", check=False).returncode != 0  # read-only
    finally:
        subprocess.run([*command, "down"], env=env, capture_output=True, timeout=120, check=False)


def _healthy(tool: list[str], cid: str) -> bool:
    """The container's own healthcheck passes (podman runs it on demand: its timers need systemd)."""
    if tool[0] == "podman":
        return run(tool, "healthcheck", "run", cid, check=False).returncode == 0
    return run(tool, "inspect", "--format", "{{.State.Health.Status}}", cid).stdout.strip() == "healthy"


def test_sigterm_drains_and_exits_0(image: tuple[list[str], str], container: Container) -> None:
    tool, _ = image
    run(tool, "stop", "--time", "60", container.cid, timeout=90)
    assert run(tool, "inspect", "--format", "{{.State.ExitCode}}", container.cid).stdout.strip() == "0"
