"""docker/nginx.conf, the proxy of docker/compose.yaml, in front of two real replicas: requests spread over both,
gRPC passes through, and a replica stopped (drained) under load costs no request.

As compose runs it, one name (`segserving`) resolves to every replica: here two servers listen on 127.0.0.2 and
127.0.0.3 on one port, and nginx runs in a mount namespace where /etc/hosts gives `segserving` both addresses.
The config is used as written but for its port numbers. Needs nginx and root (for the namespace); skipped
without them unless SEGSERVING_REQUIRE_PROXY=1 (CI installs nginx)."""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import grpc
import httpx
import numpy as np
import pytest
from helpers import ROOT, TOOLS_PYTHON, child_env

from segcore.proto import oip

pytestmark = pytest.mark.slow
ADDRESSES = ("127.0.0.2", "127.0.0.3")


def _unavailable(reason: str) -> None:
    if os.environ.get("SEGSERVING_REQUIRE_PROXY") == "1":
        pytest.fail(f"SEGSERVING_REQUIRE_PROXY=1 but {reason}")
    pytest.skip(reason)


def _port_free_on_every_address() -> int:
    for _ in range(50):
        with socket.socket() as s:
            s.bind((ADDRESSES[0], 0))
            port = s.getsockname()[1]
            try:
                for address in ADDRESSES[1:]:
                    with socket.socket() as other:
                        other.bind((address, port))
            except OSError:
                continue
        return port
    raise RuntimeError("no port free on every replica address")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health/ready", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@dataclass
class Proxy:
    http: str  # http://127.0.0.1:PORT
    grpc: str  # 127.0.0.1:PORT
    replicas: dict[str, subprocess.Popen[bytes]]  # address -> server
    replica_port: int


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    nginx = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
    if nginx is None:
        _unavailable("nginx is not installed (apt-get install nginx-light)")
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        _unavailable("the proxy test needs root and unshare (a mount namespace for /etc/hosts)")
    tmp = tmp_path_factory.mktemp("proxy")
    port, http_port, grpc_port = _port_free_on_every_address(), _free_port(), _free_port()
    replicas = {}
    for address in ADDRESSES:
        log = (tmp / f"{address}.log").open("w")
        replicas[address] = subprocess.Popen(
            [TOOLS_PYTHON, "-m", "server.start", "--host", address, "--port", str(port), "--thread", "1",
             "--workdir", str(tmp / f"workdir-{address}")],
            stdout=log, stderr=subprocess.STDOUT, env=child_env(),
        )  # fmt: skip
    conf = (ROOT / "docker" / "nginx.conf").read_text()
    conf, changed = re.subn(r"segserving:9393\b", f"segserving:{port}", conf)
    assert changed == 2, "both upstreams name segserving:9393"
    conf = conf.replace("listen 9393;", f"listen 127.0.0.1:{http_port};")
    conf = conf.replace("listen 9394 http2;", f"listen 127.0.0.1:{grpc_port} http2;")
    (tmp / "segserving.conf").write_text(conf)
    (tmp / "nginx.conf").write_text(  # the official image's main config, reduced: ours goes in its http block
        f"pid {tmp}/nginx.pid;\nerror_log stderr notice;\ndaemon off;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {tmp}/body;\n  proxy_temp_path {tmp}/proxy;\n"
        f"  include {tmp}/segserving.conf;\n}}\n"
    )
    (tmp / "hosts").write_text("".join(f"{address} segserving\n" for address in ADDRESSES))
    script = f"mount --bind {tmp}/hosts /etc/hosts && exec {nginx} -c {tmp}/nginx.conf"
    log = (tmp / "nginx.log").open("w")
    server = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                              stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    box = Proxy(f"http://127.0.0.1:{http_port}", f"127.0.0.1:{grpc_port}", replicas, port)
    try:
        deadline = time.monotonic() + 180
        while not all(_ready(f"http://{a}:{port}") for a in ADDRESSES) or not _ready(box.http):
            assert server.poll() is None, (tmp / "nginx.log").read_text()[-3000:]
            for address, replica in replicas.items():
                assert replica.poll() is None, (tmp / f"{address}.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "replicas or proxy not ready in 180 s"
            time.sleep(0.2)
        yield box
    finally:
        for process in [server, *replicas.values()]:
            if process.poll() is None:
                process.kill()
                process.wait()


def _photo() -> bytes:
    rng = np.random.default_rng(5)
    return cv2.imencode(".jpg", rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))[1].tobytes()


def _served(proxy: Proxy, address: str) -> float:
    """Image API requests answered 200 by one replica, from its own /metrics."""
    text = httpx.get(f"http://{address}:{proxy.replica_port}/metrics", timeout=5).text
    return sum(float(v) for v in re.findall(r'^segserving_requests_total\{(?=[^}]*status="200")(?=[^}]*'
                                            r'protocol="image")[^}]*\} (\S+)$', text, re.M))  # fmt: skip


def test_requests_spread_over_the_replicas_and_grpc_passes(proxy: Proxy) -> None:
    before = {a: _served(proxy, a) for a in ADDRESSES}
    with httpx.Client(base_url=proxy.http, timeout=30) as client:
        for _ in range(20):
            answer = client.post("/v1/models/portrait/segment", content=_photo())
            assert answer.status_code == 200 and answer.content.startswith(b"\x89PNG"), answer.text
    served = {a: _served(proxy, a) - before[a] for a in ADDRESSES}
    assert sum(served.values()) == 20 and all(n > 0 for n in served.values()), served
    with grpc.insecure_channel(proxy.grpc) as channel:
        ready = channel.unary_unary(f"/{oip.SERVICE}/ModelReady",
                                    response_deserializer=oip.ModelReadyResponse.FromString)  # fmt: skip
        assert ready(oip.ModelReadyRequest(name="portrait").SerializeToString(), timeout=10).ready


def test_a_replica_stopped_under_load_costs_no_request(proxy: Proxy) -> None:
    """Three clients post photos while one replica gets SIGTERM (it drains, then exits, and its address then
    refuses connections): every request is answered 200, the last ten of each client's after the replica exited."""
    codes: collections.Counter[int | str] = collections.Counter()
    exited = threading.Event()

    def post_photos() -> None:
        after = 0
        with httpx.Client(base_url=proxy.http, timeout=60) as client:
            while after < 10:
                try:
                    status: int | str = client.post("/v1/models/portrait/segment", content=_photo()).status_code
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                codes[status] += 1
                after += exited.is_set()

    clients = [threading.Thread(target=post_photos) for _ in range(3)]
    for thread in clients:
        thread.start()
    while sum(codes.values()) < 15:
        time.sleep(0.01)
    victim = proxy.replicas[ADDRESSES[0]]
    victim.send_signal(signal.SIGTERM)
    assert victim.wait(60) == 0
    exited.set()
    for thread in clients:
        thread.join()
    assert set(codes) == {200}, codes
