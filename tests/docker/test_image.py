"""docker/Dockerfile builds an image that starts its own command and serves: health, a segmentation, an ID photo,
as a non-root user, without PaddlePaddle, within 700 MB.

Needs podman (or a docker daemon) and the python:3.11-slim base image, pulled or built locally
(../shared/tools/base-image.sh where no registry is reachable). Skipped without them, unless
SEGSERVING_REQUIRE_CONTAINER=1 (CI), where their absence fails the test.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import grpc
import httpx
import numpy as np
import pytest
import yaml
from helpers import ROOT
from PIL import Image
from servers import free_port
from skimage import data

from segcore.proto import oip

pytestmark = pytest.mark.slow

BASE_IMAGE = "python:3.11-slim"
TAG = "localhost/segserving:test"
PROXY_STANDIN = "localhost/segserving-nginx-standin:test"
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


@contextlib.contextmanager
def _started(tool: list[str], tag: str, *options: str, args: tuple[str, ...] = ()) -> Iterator[Container]:
    """`run -d OPTIONS TAG ARGS`, its port 9393 published on a free loopback port, once /health/ready is 200."""
    port = free_port()
    limits = [f"--ulimit={limit}" for limit in _limits()]
    published = ["-p", f"127.0.0.1:{port}:9393"]
    cid = run(tool, "run", "-d", "--no-healthcheck", *limits, *published, *options, tag, *args).stdout.strip()
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


@pytest.fixture(scope="module")
def container(image: tuple[list[str], str]) -> Iterator[Container]:
    """The image's own ENTRYPOINT + CMD."""
    with _started(*image) as box:
        yield box


def test_runs_as_the_kubernetes_pod_does(image: tuple[list[str], str]) -> None:
    """deploy/k8s/base's pod: its args and flags file (mounted read-only), its user, a read-only root filesystem
    with /tmp the only writable place, every capability dropped, no privilege escalation: it serves a photo."""
    deployment = yaml.safe_load((ROOT / "deploy" / "k8s" / "base" / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    (box,) = pod["containers"]
    assert box["securityContext"]["readOnlyRootFilesystem"]
    (flags,) = [v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v]
    (mount,) = [m["mountPath"] for m in box["volumeMounts"] if m["name"] == "flags"]
    user = f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}"
    options = ["--read-only", "--tmpfs", "/tmp", "--user", user, "--cap-drop", "ALL", "--security-opt",
               "no-new-privileges", "-v", f"{ROOT / 'deploy' / 'k8s' / 'base'}:{mount}:ro"]  # fmt: skip
    assert flags == "segserving-flags"  # generated from base/server.flags, which the mount above provides
    with _started(*image, *options, args=tuple(box["args"])) as served:
        reply = httpx.post(f"{served.url}/v1/models/portrait/segment", content=_photo(), timeout=60)
        assert reply.status_code == 200, reply.text
        assert served.exec("touch", "/home/segserving/x").returncode != 0  # the root filesystem is read-only
        assert "server.pid" in served.exec("ls", "/tmp/segserving_9393").stdout.split()  # --workdir under /tmp


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


def _proxy_image(tool: list[str]) -> str:
    """compose.yaml's nginx image, or where no registry answers, a stand-in built from Debian's nginx on the local
    debian:bookworm-slim (tests/docker/nginx-standin)."""
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    official = re.fullmatch(r"\$\{SEGSERVING_PROXY_IMAGE:-(.+)\}", compose["services"]["proxy"]["image"]).group(1)
    if run(tool, "image", "inspect", official, check=False).returncode == 0:
        return official
    if run(tool, "pull", official, timeout=300, check=False).returncode == 0:
        return official
    if run(tool, "image", "inspect", "debian:bookworm-slim", check=False).returncode != 0:
        _unavailable(f"neither {official} nor debian:bookworm-slim (for a stand-in) is available")
    build = ["build", "-t", PROXY_STANDIN, str(ROOT / "tests" / "docker" / "nginx-standin")]
    if tool[0] == "podman":
        build[1:1] = ["--isolation", "chroot", "--network", "host", "--format", "docker"]
    proc = subprocess.run([tool[0], *build], capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return PROXY_STANDIN


def test_compose_runs_replicas_behind_the_proxy(image: tuple[list[str], str], tmp_path: Path) -> None:
    """docker/compose.yaml as written (images and ports by its variables): two replicas, each healthy with the
    repository mounted read-only, behind nginx, which turns healthy, spreads photos over both and passes gRPC."""
    tool, tag = image
    compose = tool[0] == "podman"  # podman-compose, else docker's compose plugin
    if compose and importlib.util.find_spec("podman_compose") is None:
        _unavailable("podman-compose is not installed (pip install -e '.[dev]')")
    port, grpc_port, project = free_port(), free_port(), f"segserving-test-{os.getpid()}"
    env = dict(os.environ, SEGSERVING_IMAGE=tag, SEGSERVING_PORT=str(port), SEGSERVING_GRPC_PORT=str(grpc_port),
               SEGSERVING_PROXY_IMAGE=_proxy_image(tool))  # fmt: skip
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

        def service(name: str) -> list[str]:  # both compose tools set docker's service label
            filters = ["--filter", f"label={label}={project}", "--filter", f"label=com.docker.compose.service={name}"]
            return sorted(run(tool, "ps", *filters, "--format", "{{.Names}}").stdout.split())

        replicas, (proxy,) = service("segserving"), service("proxy")
        assert len(replicas) == 2, replicas
        deadline = time.monotonic() + 180
        while not all(_healthy(tool, cid) for cid in [*replicas, proxy]):
            assert time.monotonic() < deadline, run(tool, "logs", proxy, check=False).stderr[-3000:]
            time.sleep(1)
        before = {cid: _answered(tool, cid) for cid in replicas}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            for _ in range(10):
                answer = client.post("/v1/models/portrait/segment", content=_photo())
                assert answer.status_code == 200 and answer.content.startswith(b"\x89PNG"), answer.text[:300]
        served = {cid: _answered(tool, cid) - before[cid] for cid in replicas}
        assert sum(served.values()) == 10 and all(n > 0 for n in served.values()), served
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            ready = channel.unary_unary(f"/{oip.SERVICE}/ModelReady",
                                        response_deserializer=oip.ModelReadyResponse.FromString)  # fmt: skip
            assert ready(oip.ModelReadyRequest(name="portrait").SerializeToString(), timeout=10).ready
        for cid in replicas:
            models = run(tool, "exec", cid, "ls", "/models").stdout.split()
            expected = sorted(p.name for p in (ROOT / "serving_models").iterdir() if p.name != "__pycache__")
            assert sorted(models) == expected
            assert run(tool, "exec", cid, "touch", "/models/x", check=False).returncode != 0  # read-only
    finally:
        subprocess.run([*command, "down"], env=env, capture_output=True, timeout=180, check=False)


def _answered(tool: list[str], cid: str) -> float:
    """Image API requests one replica answered 200, from its /metrics (read inside its container)."""
    script = ("import re, urllib.request; text = urllib.request.urlopen('http://127.0.0.1:9393/metrics').read()"
              ".decode(); print(sum(float(v) for v in re.findall(r'^segserving_requests_total\\{[^}]*protocol="
              "\"image\"[^}]*status=\"200\"\\} (\\S+)$', text, re.M)))")  # fmt: skip
    return float(run(tool, "exec", cid, "python", "-c", script).stdout)


def _healthy(tool: list[str], cid: str) -> bool:
    """The container's own healthcheck passes (podman runs it on demand: its timers need systemd)."""
    if tool[0] == "podman":
        return run(tool, "healthcheck", "run", cid, check=False).returncode == 0
    return run(tool, "inspect", "--format", "{{.State.Health.Status}}", cid).stdout.strip() == "healthy"


def test_sigterm_drains_and_exits_0(image: tuple[list[str], str], container: Container) -> None:
    tool, _ = image
    run(tool, "stop", "--time", "60", container.cid, timeout=90)
    assert run(tool, "inspect", "--format", "{{.State.ExitCode}}", container.cid).stdout.strip() == "0"
