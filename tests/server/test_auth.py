"""API keys: every route but the probes needs one when keys are set, over HTTP and gRPC; the SDK sends it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import grpc
import httpx
import numpy as np
import pytest
from helpers import ROOT
from servers import ServerProcess, start_server
from test_start_cli import start_cli

import client_sdk
from client_sdk import AuthError, SegClient, ServingClient
from segcore.proto.segmentation_pb2 import SegmentRequest
from server.auth import ApiKeys, credential

FILE_KEY, ENV_KEY = "sk-file-3f9c1e7a", "sk-env-b2d48a60"
PORTRAIT_CLIENT = ROOT / "serving_models" / "portrait" / "serving_client"


def photo() -> bytes:
    image = np.zeros((48, 40, 3), np.uint8)
    cv2.circle(image, (20, 24), 12, (200, 180, 160), -1)
    return cv2.imencode(".png", image)[1].tobytes()


# ----- the keys themselves -----


def test_keys_from_a_file_with_comments_and_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# production keys\n\n  {FILE_KEY}  \n# old-key\n{FILE_KEY}\n")
    keys = ApiKeys.load(str(path), f" {ENV_KEY} ,,")
    assert len(keys.digests) == 2 and keys.enabled
    assert keys.accepts(FILE_KEY) and keys.accepts(ENV_KEY)
    for wrong in (None, "", "old-key", FILE_KEY[:-1], FILE_KEY + "x", "# production keys"):
        assert not keys.accepts(wrong)
    assert FILE_KEY.encode() not in repr(keys).encode()  # only digests are kept
    assert ApiKeys().accepts(None)  # no keys: open


@pytest.mark.parametrize(("text", "problem"), [("a key\n", "whitespace"), ("k\x07\n", "unprintable")])
def test_a_malformed_key_is_refused(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "keys"
    path.write_text(text)
    with pytest.raises(ValueError, match=problem):
        ApiKeys.load(str(path))


def test_credential_forms() -> None:
    assert credential("Bearer abc", None) == "abc" and credential("bearer   abc ", None) == "abc"
    assert credential(None, " abc ") == "abc" and credential("Bearer x", "y") == "y"
    assert credential("Basic abc", None) is None and credential("Bearer ", None) is None
    assert credential(None, None) is None


# ----- a server with keys -----


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("auth")
    (tmp / "keys").write_text(f"# one key per line\n{FILE_KEY}\n")
    with start_server(tmp, "--api_key_file", tmp / "keys", "--thread", "1",
                      env={"SEGSERVING_API_KEYS": ENV_KEY}) as server:  # fmt: skip
        yield server


@pytest.mark.parametrize("path", ["/health/live", "/health/ready", "/v2/health/live", "/v2/health/ready", "/metrics"])
def test_probes_and_metrics_stay_open(secured: ServerProcess, path: str) -> None:
    assert httpx.get(secured.url + path).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/models/portrait/segment"), ("POST", "/GeneralModelService/inference"),
     ("POST", "/v2/models/portrait/infer"), ("POST", "/v1/id-photo"), ("GET", "/v1/models"),
     ("GET", "/v2/models/portrait"), ("GET", "/docs"), ("GET", "/no/such/route")],
)  # fmt: skip
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"X-API-Key": FILE_KEY[:-1]}])
def test_every_other_route_needs_a_key(secured: ServerProcess, method: str, path: str, headers: dict) -> None:
    response = httpx.request(method, secured.url + path, headers=headers, content=b"x" if method == "POST" else None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="segserving"'
    body = response.json()
    assert body["code"] == "unauthenticated"
    assert body["error"] == ("missing API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"
                             if not headers else "invalid API key")  # fmt: skip


@pytest.mark.parametrize(
    "headers", [{"Authorization": f"Bearer {FILE_KEY}"}, {"authorization": f"bearer {ENV_KEY}"}, {"X-API-Key": ENV_KEY}]
)
def test_a_valid_key_passes(secured: ServerProcess, headers: dict) -> None:
    response = httpx.post(f"{secured.url}/v1/models/portrait/segment", content=photo(), headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    assert httpx.get(f"{secured.url}/v1/models", headers=headers).status_code == 200


def test_grpc_needs_a_key_in_the_metadata(secured: ServerProcess) -> None:
    request = SegmentRequest(image=photo(), model="portrait").SerializeToString()
    with grpc.insecure_channel(secured.address) as channel:
        call = channel.unary_unary("/segserving.v1.Segmentation/Segment")
        with pytest.raises(grpc.RpcError) as refused:
            call(request, timeout=30)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "missing API key" in refused.value.details()
        with pytest.raises(grpc.RpcError) as wrong:
            call(request, timeout=30, metadata=(("x-api-key", "nope"),))
        assert wrong.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert call(request, timeout=30, metadata=(("authorization", f"Bearer {FILE_KEY}"),))
        paddle = channel.unary_unary("/baidu.paddle_serving.predictor.general_model.GeneralModelService/inference")
        with pytest.raises(grpc.RpcError) as paddle_refused:
            paddle(b"", timeout=30)
        assert paddle_refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_the_sdk_sends_its_key(secured: ServerProcess, protocol: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEGSERVING_API_KEY", raising=False)
    with SegClient(secured.address, protocol=protocol, retries=0) as client, pytest.raises(AuthError):
        client.segment(photo())
    with SegClient(secured.address, protocol=protocol, api_key=FILE_KEY) as client:
        assert client.segment(photo()).label_map.shape == (48, 40)
    monkeypatch.setenv("SEGSERVING_API_KEY", ENV_KEY)  # no code change: the environment carries the key
    assert client_sdk.segment(photo(), secured.address).label_map.shape == (48, 40)


@pytest.mark.parametrize("grpc_client", [False, True])
def test_the_paddle_serving_client_sends_its_key(secured: ServerProcess, grpc_client: bool,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.delenv("SEGSERVING_API_KEY", raising=False)
    feed = {"image": np.random.default_rng(0).random((3, 256, 256), dtype=np.float32)}
    for key, works in ((None, False), (FILE_KEY, True)):
        with ServingClient(api_key=key, retries=0) as client:
            client.load_client_config(PORTRAIT_CLIENT)
            client.set_use_grpc_client(grpc_client)
            client.connect(secured.address)
            if works:
                assert client.predict(feed, fetch=["fetch_name_0"])["fetch_name_0"].shape == (1, 1, 256, 256)
            else:
                with pytest.raises(AuthError):
                    client.predict(feed, fetch=["fetch_name_0"])


def test_keys_never_reach_the_log(secured: ServerProcess) -> None:
    httpx.post(f"{secured.url}/v1/models/portrait/segment", content=photo(), headers={"X-API-Key": "sk-guess-1"})
    time.sleep(0.2)
    log = secured.log()
    assert FILE_KEY not in log and ENV_KEY not in log and "sk-guess-1" not in log
    assert "no API keys" not in log


# ----- flags -----


def test_metrics_auth_closes_metrics(tmp_path: Path) -> None:
    with start_server(tmp_path, "--thread", "1", "--metrics_auth", env={"SEGSERVING_API_KEYS": ENV_KEY}) as server:
        assert httpx.get(f"{server.url}/metrics").status_code == 401
        assert httpx.get(f"{server.url}/metrics", headers={"X-API-Key": ENV_KEY}).status_code == 200
        assert httpx.get(f"{server.url}/health/ready").status_code == 200


def test_an_open_server_on_a_public_address_warns_once(tmp_path: Path) -> None:
    with start_server(tmp_path, "--thread", "1", "--host", "0.0.0.0") as server:
        assert httpx.post(f"{server.url}/v1/models/portrait/segment", content=photo(), timeout=60).status_code == 200
        warnings = [line for line in server.log().splitlines() if "no API keys" in line]
        assert len(warnings) == 1 and "0.0.0.0" in warnings[0] and "--api_key_file" in warnings[0]


def test_key_flag_errors_are_one_line(tmp_path: Path) -> None:
    missing = start_cli("--api_key_file", str(tmp_path / "nope"))
    assert missing.returncode == 2 and missing.stderr.strip().startswith("error: --api_key_file")
    assert len(missing.stderr.strip().splitlines()) == 1
    alone = start_cli("--metrics_auth")
    assert alone.returncode == 2 and "--metrics_auth needs API keys" in alone.stderr


# ----- CORS -----


def test_cors_allows_only_the_listed_origins_and_preflight_needs_no_key(tmp_path: Path) -> None:
    origin = "https://app.example.com"
    with start_server(tmp_path, "--thread", "1", "--cors_origins", origin,
                      env={"SEGSERVING_API_KEYS": ENV_KEY}) as server:  # fmt: skip
        url = f"{server.url}/v1/models/portrait/segment"
        preflight = {"Origin": origin, "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "authorization, content-type"}  # fmt: skip
        answer = httpx.options(url, headers=preflight)
        assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == origin
        assert "authorization" in answer.headers["access-control-allow-headers"].lower()
        other = httpx.options(url, headers={**preflight, "Origin": "https://evil.example"})
        assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
        reply = httpx.post(url, content=photo(), headers={"Origin": origin, "X-API-Key": ENV_KEY}, timeout=60)
        assert reply.status_code == 200 and reply.headers["access-control-allow-origin"] == origin
        refused = httpx.post(url, content=photo(), headers={"Origin": origin})
        assert refused.status_code == 401  # CORS lets the browser read the refusal; it does not skip the key
    with start_server(tmp_path, "--thread", "1") as server:  # the default: no origin allowed
        answer = httpx.options(
            f"{server.url}/v1/models", headers={"Origin": origin, "Access-Control-Request-Method": "GET"}
        )
        assert "access-control-allow-origin" not in answer.headers
