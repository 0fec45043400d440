"""Paddle Serving 0.9 client code against a real server: `Client` balancing several endpoints and failing over,
A/B variants with need_variant_tag, `HttpClient`'s raw return shapes, feeds mapped to a one-input model, and a
0.9-style client script run unchanged but for its import line."""

from __future__ import annotations

import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import child_env
from relay import RecordingRelay
from servers import ServerProcess, free_port, start_server

from client_sdk import Client, HttpClient, ServingClient
from segcore.proto.general_model_service_pb2 import Response

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "serving_models" / "portrait" / "serving_client" / "serving_client_conf.prototxt"
INPUT = np.random.default_rng(11).random((3, 256, 256), dtype=np.float32)
FETCH = ["fetch_name_0"]
MODES = ("proto", "json", "grpc")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with start_server(tmp_path_factory.mktemp("dropin"), "--thread", "1", "--model", "portrait") as srv:
        yield srv


@pytest.fixture
def relays(server: ServerProcess) -> Iterator[list[RecordingRelay]]:
    made = [RecordingRelay(server.port), RecordingRelay(server.port)]
    yield made
    for relay in made:
        relay.close()


@pytest.fixture(scope="module")
def expected(server: ServerProcess) -> dict[str, np.ndarray]:
    with Client() as client:
        client.load_client_config(str(CONF))
        client.connect([server.address])
        return client.predict({"image": INPUT}, fetch=FETCH)


def _client(mode: str, kind: Callable[[], ServingClient] = Client, retries: int = 0) -> ServingClient:
    client = kind()
    client.retries = retries
    client.load_client_config(str(CONF))
    client.set_http_proto(mode != "json")
    client.set_use_grpc_client(mode == "grpc")
    return client


def _address(relay: RecordingRelay) -> str:
    return f"127.0.0.1:{relay.port}"


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_paddle_serving_names_import_from_the_sdk() -> None:
    assert Client is ServingClient and issubclass(HttpClient, ServingClient)


# ----- several endpoints -----
@pytest.mark.parametrize("mode", ["proto", "json"])
def test_connect_balances_requests_across_endpoints(relays: list[RecordingRelay], mode: str,
                                                    expected: dict[str, np.ndarray]) -> None:  # fmt: skip
    with _client(mode) as client:
        client.connect([_address(r) for r in relays])
        for _ in range(6):
            _same(client.predict({"image": INPUT}, fetch=FETCH), expected)
    assert [r.requests() for r in relays] == [3, 3]


def test_grpc_connect_balances_requests_across_endpoints(relays: list[RecordingRelay]) -> None:
    with _client("grpc") as client:
        client.connect([_address(r) for r in relays])
        for _ in range(6):
            client.predict({"image": INPUT}, fetch=FETCH)
    for relay in relays:  # gRPC compresses its headers: count the tensors' bytes instead of request lines
        assert 3 * INPUT.nbytes <= len(relay.sent) < 4 * INPUT.nbytes


@pytest.mark.parametrize("mode", MODES)
def test_no_request_is_lost_when_an_endpoint_stops_answering(relays: list[RecordingRelay], mode: str,
                                                             expected: dict[str, np.ndarray]) -> None:  # fmt: skip
    live, dying = relays
    with _client(mode) as client:  # retries=0: the failover alone must save every request
        client.connect([_address(dying), _address(live)])
        for _ in range(2):
            client.predict({"image": INPUT}, fetch=FETCH)
        dying.close()  # connections cut, nothing listening any more
        before = len(live.sent)
        for _ in range(6):
            _same(client.predict({"image": INPUT}, fetch=FETCH), expected)
    assert len(live.sent) - before >= 6 * INPUT.nbytes


@pytest.mark.parametrize("mode", MODES)
def test_an_endpoint_down_from_the_start_is_skipped(server: ServerProcess, mode: str,
                                                    expected: dict[str, np.ndarray]) -> None:  # fmt: skip
    with _client(mode) as client:
        client.connect([f"127.0.0.1:{free_port()}", server.address])
        for _ in range(4):
            _same(client.predict({"image": INPUT}, fetch=FETCH), expected)


def test_every_endpoint_down_raises_unavailable() -> None:
    from client_sdk import Unavailable

    with _client("proto") as client:
        client.connect([f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"])
        with pytest.raises(Unavailable, match="cannot reach"):
            client.predict({"image": INPUT}, fetch=FETCH)


# ----- A/B variants -----
def test_need_variant_tag_returns_result_and_tag(relays: list[RecordingRelay],
                                                 expected: dict[str, np.ndarray]) -> None:  # fmt: skip
    with _client("proto") as client:
        client.add_variant("bow", [_address(relays[0])], 50)
        client.add_variant("lstm", [_address(relays[1])], 50)
        client.connect()
        tags = []
        for _ in range(30):
            answer = client.predict({"image": INPUT}, fetch=FETCH, need_variant_tag=True)
            assert isinstance(answer, list) and len(answer) == 2
            result, tag = answer
            _same(result, expected)
            tags.append(tag)
    assert set(tags) == {"bow", "lstm"}
    assert [relays[0].requests(), relays[1].requests()] == [tags.count("bow"), tags.count("lstm")]


def test_connect_without_variants_tags_results_as_paddle_serving_does(server: ServerProcess) -> None:
    with _client("proto") as client:
        client.connect([server.address])
        _, tag = client.predict({"image": INPUT}, fetch=FETCH, need_variant_tag=True)
        assert tag == f"default_tag_{id(client)}"


def test_connect_with_endpoints_after_add_variant_warns_and_keeps_the_variants(relays: list[RecordingRelay]) -> None:
    with _client("proto") as client:
        client.add_variant("only", [_address(relays[0])], 1)
        with pytest.warns(UserWarning, match="ignored"):
            client.connect([_address(relays[1])])
        assert client.predict({"image": INPUT}, fetch=FETCH, need_variant_tag=True)[1] == "only"
    assert [r.requests() for r in relays] == [1, 0]


# ----- HttpClient's return shapes -----
@pytest.mark.parametrize("mode", MODES)
def test_http_client_returns_what_paddle_serving_0_9_returned(server: ServerProcess, mode: str,
                                                              expected: dict[str, np.ndarray]) -> None:  # fmt: skip
    with _client(mode, HttpClient) as client:
        client.connect([server.address])
        answer = client.predict(feed={"image": INPUT}, fetch=FETCH, batch=False, need_variant_tag=True)
    if mode == "json":
        assert isinstance(answer, dict)
        tensor = answer["outputs"][0]["tensor"][0]
        values, shape = tensor.get("float_data") or tensor.get("int64_data") or tensor["int_data"], tensor["shape"]
    else:
        assert isinstance(answer, Response)
        tensor = answer.outputs[0].tensor[0]
        values, shape = (tensor.float_data or tensor.int64_data or tensor.int_data), tensor.shape
    alias = tensor["alias_name"] if mode == "json" else tensor.alias_name
    assert alias == "fetch_name_0"
    (array,) = expected.values()
    np.testing.assert_array_equal(np.asarray(values, dtype=array.dtype).reshape(list(shape)), array)


def test_http_client_drops_unknown_fetch_names_as_0_9_did(server: ServerProcess) -> None:
    with _client("proto", HttpClient) as client:
        client.connect([server.address])
        answer = client.predict(feed={"image": INPUT}, fetch=["no_such_output"])
    assert [t.alias_name for t in answer.outputs[0].tensor] == ["fetch_name_0"]  # none left: every output


# ----- feeds for a one-input model -----
@pytest.mark.parametrize("mode", MODES)
def test_a_bare_array_feeds_the_only_input(server: ServerProcess, mode: str, expected: dict[str, np.ndarray]) -> None:
    with _client(mode) as client:
        client.connect([server.address])
        _same(client.predict(INPUT, fetch=FETCH), expected)


@pytest.mark.parametrize("mode", MODES)
def test_a_single_wrongly_named_feed_goes_to_the_only_input(server: ServerProcess, mode: str,
                                                            expected: dict[str, np.ndarray]) -> None:  # fmt: skip
    with _client(mode) as client:
        client.connect([server.address])
        with pytest.warns(UserWarning, match="feed name 'x' is not in this model; using its only input 'image'"):
            result = client.predict({"x": INPUT}, fetch=FETCH)
    _same(result, expected)


def test_two_feeds_for_a_one_input_model_are_still_refused(server: ServerProcess) -> None:
    from client_sdk import InvalidInput

    with _client("proto") as client:
        client.connect([server.address])
        with warnings.catch_warnings(), pytest.raises(InvalidInput, match="unknown feed name 'x'"):
            warnings.simplefilter("error")
            client.predict({"image": INPUT, "x": INPUT}, fetch=FETCH)


# ----- a Paddle Serving 0.9 script, unchanged but for its import line -----
PADDLE_SERVING_SCRIPT = ROOT / "docs" / "examples" / "paddle_serving_client.py"


def test_a_paddle_serving_0_9_client_script_runs_with_only_its_import_changed(relays: list[RecordingRelay],
                                                                               tmp_path: Path) -> None:  # fmt: skip
    original = PADDLE_SERVING_SCRIPT.read_text()
    assert "from paddle_serving_client import Client\n" in original
    script = tmp_path / "client.py"
    script.write_text(original.replace("from paddle_serving_client import Client\n", "from client_sdk import Client\n"))
    endpoints = ",".join(_address(r) for r in relays)
    proc = subprocess.run([sys.executable, str(script), str(CONF), endpoints], capture_output=True, text=True,
                          env=child_env(), timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[-1].startswith("served 8 images")
    assert [r.requests() for r in relays] == [4, 4]
