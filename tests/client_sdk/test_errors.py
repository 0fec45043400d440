"""Each typed exception, from the real server's refusals where the server can produce them, over HTTP and gRPC."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sdk_support import photo_bgr, truncated_jpeg
from servers import ServerProcess, free_port, start_server

from client_sdk import (
    AuthError,
    InvalidInput,
    ModelNotFound,
    SegClient,
    SegResult,
    SegServingError,
    ServerBusy,
    ServerError,
    Timeout,
    Unavailable,
)
from client_sdk.errors import CODES, STATUS_CODES, error_for, error_for_grpc

PROTOCOLS = ("http", "grpc")
MAX_PIXELS = 100_000


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with start_server(tmp_path_factory.mktemp("sdk-limited"), "--thread", "1",
                      "--max_image_pixels", str(MAX_PIXELS)) as srv:  # fmt: skip
        yield srv


@pytest.fixture(scope="module")
def hasty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose deadline no request can meet."""
    with start_server(tmp_path_factory.mktemp("sdk-hasty"), "--thread", "1", "--request_timeout_ms", "1") as srv:
        yield srv


def _client(server: ServerProcess, protocol: str, **options: object) -> SegClient:
    return SegClient(server.address, protocol=protocol, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_corrupt_image_is_invalid_input(limited: ServerProcess, protocol: str) -> None:
    with _client(limited, protocol, retries=3) as client:
        with pytest.raises(InvalidInput) as by_server:  # headers fine, pixels broken: the server refuses it
            client.segment(truncated_jpeg())
        assert by_server.value.status == 400
        assert "JPEG" in by_server.value.message
        with pytest.raises(InvalidInput) as by_client:  # not an image at all: refused before sending
            client.segment(b"\xff\xd8\xff" + b"definitely not a JPEG" * 20)
        assert "cannot read image" in by_client.value.message
        assert isinstance(by_client.value, ValueError)  # InvalidInput is also a ValueError


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_image_over_max_image_pixels_is_invalid_input(limited: ServerProcess, protocol: str) -> None:
    with _client(limited, protocol, retries=3) as client:
        with pytest.raises(InvalidInput) as too_big:
            client.segment(photo_bgr(400, 300))  # 120,000 pixels
        assert too_big.value.status == 413
        assert str(MAX_PIXELS) in too_big.value.message
        assert isinstance(client.segment(photo_bgr(301, 199)), SegResult)  # 59,899 pixels: fine


def test_small_max_image_pixels_still_serves(tmp_path: Path) -> None:
    with (
        start_server(tmp_path, "--thread", "1", "--max_image_pixels", "50000") as srv,
        SegClient(srv.address) as client,
    ):
        assert isinstance(client.segment(photo_bgr(200, 150)), SegResult)  # 30,000 pixels
        with pytest.raises(InvalidInput) as too_big:
            client.segment(photo_bgr(301, 199))  # 59,899 pixels
        assert too_big.value.status == 413


@pytest.mark.parametrize("kind", ["list", "float array", "missing file", "directory"])
def test_unusable_inputs_are_invalid_input(limited: ServerProcess, kind: str, tmp_path: Path) -> None:
    bad = {"list": [1, 2, 3], "float array": np.zeros((10, 10, 3), np.float32), "missing file": tmp_path / "nope.png",
           "directory": tmp_path}[kind]  # fmt: skip
    with _client(limited, "http") as client, pytest.raises(InvalidInput, match="cannot read image"):
        client.segment(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_unknown_model_is_model_not_found(limited: ServerProcess, protocol: str) -> None:
    with _client(limited, protocol, model="nope") as client:
        with pytest.raises(ModelNotFound) as missing:
            client.segment(photo_bgr(64, 64))
        assert missing.value.status == 404
        assert "nope" in missing.value.message and "portrait" in missing.value.message  # lists what is served
        assert isinstance(missing.value, LookupError)
        assert isinstance(client.segment(photo_bgr(64, 64), model="portrait"), SegResult)  # per-call model


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_server_deadline_is_timeout(hasty: ServerProcess, protocol: str) -> None:
    with _client(hasty, protocol, retries=3) as client:
        with pytest.raises(Timeout) as late:
            client.segment(photo_bgr(64, 64))
        assert late.value.status == 504
        assert "deadline" in late.value.message.lower()
        assert isinstance(late.value, TimeoutError)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_client_deadline_is_timeout(limited: ServerProcess, protocol: str) -> None:
    with _client(limited, protocol, timeout=0.0001, retries=3) as client, pytest.raises(Timeout):
        client.segment(photo_bgr(200, 150))


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("retries", [0, 2])
def test_nothing_listening_is_unavailable(protocol: str, retries: int) -> None:
    endpoint = f"127.0.0.1:{free_port()}"
    client = SegClient(endpoint, protocol=protocol, retries=retries, backoff=0.01, timeout=10)  # type: ignore[arg-type]
    with client, pytest.raises(Unavailable) as down:
        client.segment(photo_bgr(64, 64))
    assert isinstance(down.value, ConnectionError)
    assert isinstance(down.value, SegServingError)


def test_batch_collects_typed_errors(limited: ServerProcess) -> None:
    with _client(limited, "http") as client:
        results = client.segment_batch([photo_bgr(64, 64), photo_bgr(400, 300), truncated_jpeg()], progress=False)
    assert isinstance(results[0], SegResult)
    assert isinstance(results[1], InvalidInput) and (results[1].status, results[1].code) == (413, "too_large")
    assert isinstance(results[2], InvalidInput) and (results[2].status, results[2].code) == (400, "invalid_input")


# ----- the mapping itself (no server answers 401/403 or a deliberate 500) -----
def test_every_server_error_code_has_an_exception_and_a_status() -> None:
    from server.errors import BY_STATUS, ERRORS

    assert {cls.code for cls in ERRORS} == set(CODES)
    assert {cls.status for cls in ERRORS} == set(STATUS_CODES)
    # a status several codes share (429: busy, rate_limited) falls back on the same code on both sides
    assert {status: cls.code for status, cls in BY_STATUS.items()} == STATUS_CODES


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [("busy", 503, ServerBusy), ("too_large", 400, InvalidInput), ("not_found", 400, ModelNotFound),
     ("unavailable", 429, Unavailable), ("internal", 400, ServerError)],
)  # fmt: skip
def test_the_code_decides_not_the_status(code: str, status: int, kind: type[SegServingError]) -> None:
    error = error_for(code, status, "words")
    assert type(error) is kind and error.code == code and error.status == status


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, InvalidInput), (413, InvalidInput), (415, InvalidInput), (422, InvalidInput), (404, ModelNotFound),
     (429, ServerBusy), (503, Unavailable), (504, Timeout), (401, AuthError), (403, AuthError),
     (500, ServerError), (502, ServerError)],
)  # fmt: skip
def test_without_a_code_the_status_decides(status: int, kind: type[SegServingError]) -> None:
    error = error_for("", status, "the server's words", retry_after=2.0)
    assert type(error) is kind
    assert error.status == status and error.message == "the server's words" and str(error) == "the server's words"
    if kind is ServerBusy:
        assert isinstance(error, ServerBusy) and error.retry_after == 2.0


def test_auth_errors_are_permission_errors() -> None:
    for status in (401, 403):
        error = error_for("", status, "no")
        assert isinstance(error, AuthError) and isinstance(error, PermissionError)
    assert isinstance(error_for_grpc("UNAUTHENTICATED", "no"), AuthError)
    assert error_for_grpc("PERMISSION_DENIED", "no").status == 403


@pytest.mark.parametrize(
    ("code", "metadata", "kind", "status"),
    [("INVALID_ARGUMENT", "", InvalidInput, 400), ("NOT_FOUND", "", ModelNotFound, 404),
     ("RESOURCE_EXHAUSTED", "busy", ServerBusy, 429), ("RESOURCE_EXHAUSTED", "too_large", InvalidInput, 413),
     ("RESOURCE_EXHAUSTED", "", InvalidInput, 413),  # gRPC's own message-size limit: no code, never retried
     ("INVALID_ARGUMENT", "unsupported_media_type", InvalidInput, 415),
     ("DEADLINE_EXCEEDED", "", Timeout, 504), ("UNAVAILABLE", "", Unavailable, 503),
     ("INTERNAL", "", ServerError, 500), ("UNKNOWN", "", ServerError, 500)],
)  # fmt: skip
def test_error_for_grpc(code: str, metadata: str, kind: type[SegServingError], status: int) -> None:
    error = error_for_grpc(code, "words", {"segserving-error-code": metadata} if metadata else None)
    assert type(error) is kind and error.status == status and error.message == "words"
    assert error.code == (metadata or STATUS_CODES[status])
