"""TLS on the one port: HTTPS and gRPC over TLS with certificates made at test time, client certificates when
--ssl_ca_certs is given, and the SDK's (and the drop-in ServingClient's) https:// endpoints with verify=."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import cv2
import grpc
import httpx
import numpy as np
import pytest
import trustme
from helpers import ROOT
from servers import ServerProcess, start_server
from test_start_cli import start_cli

from client_sdk import SegClient, ServingClient, Unavailable
from segcore.proto.segmentation_pb2 import SegmentRequest

PORTRAIT_CLIENT = ROOT / "serving_models" / "portrait" / "serving_client"


def photo() -> bytes:
    image = np.zeros((32, 24, 3), np.uint8)
    cv2.rectangle(image, (4, 4), (18, 26), (90, 160, 210), -1)
    return cv2.imencode(".png", image)[1].tobytes()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def pki(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pki")
    paths = {name: folder / f"{name}.pem" for name in ("ca", "cert", "key", "client")}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    server_cert.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    for pem in server_cert.cert_chain_pems[1:]:
        pem.write_to_path(str(paths["cert"]), append=True)
    server_cert.private_key_pem.write_to_path(str(paths["key"]))
    ca.issue_cert("client@example.com").private_key_and_cert_chain_pem.write_to_path(str(paths["client"]))
    return paths


@pytest.fixture(scope="module")
def tls_server(pki: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with start_server(tmp_path_factory.mktemp("tls"), "--thread", "1", "--ssl_certfile", pki["cert"],
                      "--ssl_keyfile", pki["key"], tls_ca=pki["ca"]) as server:  # fmt: skip
        yield server


def test_https_with_the_ca_and_refused_without_it(tls_server: ServerProcess, pki: dict[str, Path]) -> None:
    url = f"https://127.0.0.1:{tls_server.port}"
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    response = httpx.post(f"{url}/v1/models/portrait/segment", content=photo(), verify=context, timeout=60)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    with pytest.raises(httpx.ConnectError):  # a client that does not trust the CA
        httpx.get(f"{url}/health/ready")
    with pytest.raises(httpx.RemoteProtocolError):  # plaintext HTTP on a TLS port gets no HTTP answer
        httpx.get(f"http://127.0.0.1:{tls_server.port}/health/ready")


def test_an_http2_capable_client_is_served_http_1_1(tls_server: ServerProcess, pki: dict[str, Path]) -> None:
    """ALPN prefers http/1.1: a client that offers h2 as well (curl, browsers) still reaches the HTTP routes."""
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", tls_server.port)) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
    ):
        assert sock.selected_alpn_protocol() == "http/1.1"
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 200")


def test_grpc_over_tls(tls_server: ServerProcess, pki: dict[str, Path]) -> None:
    credentials = grpc.ssl_channel_credentials(root_certificates=pki["ca"].read_bytes())
    with grpc.secure_channel(f"127.0.0.1:{tls_server.port}", credentials) as channel:
        call = channel.unary_unary("/segserving.v1.Segmentation/Segment")
        assert call(SegmentRequest(image=photo(), model="portrait").SerializeToString(), timeout=60)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_the_sdk_speaks_tls(tls_server: ServerProcess, pki: dict[str, Path], protocol: str) -> None:
    endpoint = f"https://127.0.0.1:{tls_server.port}"
    with SegClient(endpoint, protocol=protocol, verify=str(pki["ca"])) as client:
        assert client.segment(photo()).label_map.shape == (32, 24)
    with SegClient(endpoint, protocol=protocol, retries=0) as client, pytest.raises(Unavailable):
        client.segment(photo())  # the system CAs do not know the test CA


@pytest.mark.parametrize("grpc_client", [False, True])
def test_the_paddle_serving_client_speaks_tls(tls_server: ServerProcess, pki: dict[str, Path],
                                              grpc_client: bool) -> None:  # fmt: skip
    feed = {"image": np.random.default_rng(0).random((3, 256, 256), dtype=np.float32)}
    endpoint = f"https://127.0.0.1:{tls_server.port}"
    with ServingClient(verify=str(pki["ca"]), retries=0) as client:
        client.load_client_config(PORTRAIT_CLIENT)
        client.set_use_grpc_client(grpc_client)
        client.connect([endpoint])
        assert client.predict(feed, fetch=["fetch_name_0"])["fetch_name_0"].shape == (1, 1, 256, 256)
    with ServingClient(retries=0) as client, pytest.raises(Unavailable):
        client.load_client_config(PORTRAIT_CLIENT)
        client.set_use_grpc_client(grpc_client)
        client.connect([endpoint])
        client.predict(feed, fetch=["fetch_name_0"])  # the system CAs do not know the test CA


def test_client_certificates_when_ca_certs_is_given(pki: dict[str, Path], tmp_path: Path) -> None:
    with start_server(tmp_path, "--thread", "1", "--ssl_certfile", pki["cert"], "--ssl_keyfile", pki["key"],
                      "--ssl_ca_certs", pki["ca"], tls_ca=pki["ca"], tls_client=pki["client"]) as server:  # fmt: skip
        url = f"https://127.0.0.1:{server.port}/v1/models/portrait/segment"
        context = ssl.create_default_context(cafile=str(pki["ca"]))
        with pytest.raises(httpx.HTTPError):
            httpx.post(url, content=photo(), verify=context, timeout=60).raise_for_status()
        context.load_cert_chain(str(pki["client"]))
        assert httpx.post(url, content=photo(), verify=context, timeout=60).status_code == 200


def test_tls_flag_errors(pki: dict[str, Path], tmp_path: Path) -> None:
    missing = start_cli("--ssl_certfile", str(tmp_path / "nope.pem"))
    assert missing.returncode == 2 and "--ssl_certfile" in missing.stderr and "is not a file" in missing.stderr
    alone = start_cli("--ssl_keyfile", str(pki["key"]))
    assert alone.returncode == 2 and "--ssl_keyfile and --ssl_ca_certs need --ssl_certfile" in alone.stderr
