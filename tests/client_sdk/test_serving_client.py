"""ServingClient, the paddle_serving_client drop-in, against a real server serving the bundled portrait model and
legacy_multi (two outputs) converted with aliases, over protobuf, JSON and gRPC."""

from __future__ import annotations

import gzip
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import run_convert
from relay import RecordingRelay
from servers import ServerProcess, free_port, start_server

from client_sdk import InvalidInput, ModelNotFound, ServingClient, Unavailable, UnknownFetchName

ROOT = Path(__file__).resolve().parents[2]
PORTRAIT_CLIENT = ROOT / "serving_models" / "portrait" / "serving_client"
MODES = ("proto", "json", "grpc")
MULTI = "legacy_multi"
# legacy_multi converted with aliases: feed x -> pixels; fetches argmax_0.tmp_0 -> labels, softmax_0.tmp_0 -> probs
FEED_ALIAS, FEED_NAME = "pixels", "x"
FETCH = {"labels": "argmax_0.tmp_0", "probs": "softmax_0.tmp_0"}
LEGACY_NAME = "save_infer_model/scale_0.tmp_1"
RNG = np.random.default_rng(7)
PORTRAIT_INPUT = RNG.random((3, 256, 256), dtype=np.float32)
MULTI_INPUT = RNG.normal(0, 1, (3, 24, 40)).astype(np.float32)


@pytest.fixture(scope="module")
def multi_entry(build_model: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    entry = tmp_path_factory.mktemp("sdk-repo") / MULTI
    proc = run_convert("--dirname", build_model(MULTI), "--serving_server", entry / "serving_server",
                       "--serving_client", entry / "serving_client", "--feed_alias_names", FEED_ALIAS,
                       "--fetch_alias_names", ",".join(FETCH))  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return entry


@pytest.fixture(scope="module")
def server(multi_entry: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with start_server(tmp_path_factory.mktemp("sdk-serving"), "--thread", "1", "--model", "portrait",
                      multi_entry) as srv:  # fmt: skip
        yield srv


@pytest.fixture
def make(server: ServerProcess, multi_entry: Path) -> Iterator[Callable[..., ServingClient]]:
    """make(mode, model=None) -> a connected ServingClient for portrait (model=None) or legacy_multi."""
    made: list[ServingClient] = []

    def build(mode: str, model: str | None = None, endpoint: str | None = None) -> ServingClient:
        client = ServingClient(model=model)
        conf = multi_entry / "serving_client" if model == MULTI else PORTRAIT_CLIENT
        client.load_client_config(str(conf / "serving_client_conf.prototxt"))
        client.connect([endpoint or server.address])
        client.set_http_proto(mode != "json")
        client.set_use_grpc_client(mode == "grpc")
        made.append(client)
        return client

    yield build
    for client in made:
        client.close()


def _assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


# ----- configuration -----
@pytest.mark.parametrize("which", ["file", "stream file", "directory"])
def test_load_client_config_forms(server: ServerProcess, which: str) -> None:
    path = {"file": PORTRAIT_CLIENT / "serving_client_conf.prototxt",
            "stream file": PORTRAIT_CLIENT / "serving_client_conf.stream.prototxt",
            "directory": PORTRAIT_CLIENT}[which]  # fmt: skip
    with ServingClient() as client:
        client.load_client_config(path if which == "directory" else str(path))
        assert client.get_feed_names() == ["image"]
        assert client.get_fetch_names() == ["fetch_name_0"]
        client.connect(f"localhost:{server.port}")  # a plain string works as well as a list
        out = client.predict({"image": PORTRAIT_INPUT}, fetch=["fetch_name_0"])
    assert out["fetch_name_0"].shape == (1, 1, 256, 256)


def test_predict_needs_a_config_first() -> None:
    with pytest.raises(RuntimeError, match="load_client_config"):
        ServingClient().predict({"image": PORTRAIT_INPUT})


@pytest.mark.parametrize("endpoint", ["localhost:{port}", "http://127.0.0.1:{port}", "http://localhost:{port}/"])
@pytest.mark.parametrize("mode", MODES)
def test_connect_with_hostname_or_url(make: Callable[..., ServingClient], server: ServerProcess, endpoint: str,
                                      mode: str) -> None:  # fmt: skip
    by_address = make("proto").predict({"image": PORTRAIT_INPUT}, fetch=["fetch_name_0"])
    other = make(mode, endpoint=endpoint.format(port=server.port))
    _assert_same(other.predict({"image": PORTRAIT_INPUT}, fetch=["fetch_name_0"]), by_address)


# ----- predict on both models, all modes -----
def test_portrait_identical_across_modes(make: Callable[..., ServingClient]) -> None:
    results = {mode: make(mode).predict({"image": PORTRAIT_INPUT}, fetch=["fetch_name_0"]) for mode in MODES}
    out = results["proto"]
    assert list(out) == ["fetch_name_0"]
    assert out["fetch_name_0"].shape == (1, 1, 256, 256) and out["fetch_name_0"].dtype == np.float32
    assert out["fetch_name_0"].min() >= 0.0 and out["fetch_name_0"].max() <= 1.0  # a person probability
    _assert_same(results["json"], out)
    _assert_same(results["grpc"], out)


def test_multi_output_identical_across_modes(make: Callable[..., ServingClient]) -> None:
    results = {mode: make(mode, MULTI).predict({FEED_ALIAS: MULTI_INPUT}, fetch=list(FETCH)) for mode in MODES}
    out = results["proto"]
    assert sorted(out) == ["labels", "probs"]
    assert out["labels"].shape == (1, 24, 40) and out["labels"].dtype == np.int64
    assert out["probs"].shape == (1, 4, 24, 40) and out["probs"].dtype == np.float32
    np.testing.assert_array_equal(out["labels"], out["probs"].argmax(axis=1))  # argmax of the softmax it also sent
    np.testing.assert_allclose(out["probs"].sum(axis=1), 1.0, rtol=1e-5)
    _assert_same(results["json"], out)
    _assert_same(results["grpc"], out)


@pytest.mark.parametrize("mode", MODES)
def test_batch_flag(make: Callable[..., ServingClient], mode: str) -> None:
    client = make(mode, MULTI)
    single = client.predict({FEED_ALIAS: MULTI_INPUT}, fetch=list(FETCH), batch=False)  # adds the batch dim
    pair = np.stack([MULTI_INPUT, -MULTI_INPUT])
    batched = client.predict({FEED_ALIAS: pair}, fetch=list(FETCH), batch=True)  # taken as it is
    assert batched["probs"].shape == (2, 4, 24, 40) and batched["labels"].shape == (2, 24, 40)
    np.testing.assert_allclose(batched["probs"][:1], single["probs"], rtol=1e-5, atol=1e-6)
    listed = client.predict([{FEED_ALIAS: MULTI_INPUT}, {FEED_ALIAS: -MULTI_INPUT}], fetch=["probs"])  # samples
    assert listed["probs"].shape == (2, 4, 24, 40)
    np.testing.assert_allclose(listed["probs"], batched["probs"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_fetch_by_alias_real_name_or_all(make: Callable[..., ServingClient], mode: str) -> None:
    client = make(mode, MULTI)
    everything = client.predict({FEED_ALIAS: MULTI_INPUT})
    assert sorted(everything) == ["labels", "probs"]
    by_alias = client.predict({FEED_ALIAS: MULTI_INPUT}, fetch="probs")
    assert list(by_alias) == ["probs"]
    by_name = client.predict({FEED_ALIAS: MULTI_INPUT}, fetch=[FETCH["probs"]])
    assert sorted(by_name) == sorted(["probs", FETCH["probs"]])  # the alias, and the name asked for
    np.testing.assert_array_equal(by_name[FETCH["probs"]], by_alias["probs"])
    np.testing.assert_array_equal(by_name["probs"], everything["probs"])
    by_feed_name = client.predict({FEED_NAME: MULTI_INPUT}, fetch=["labels"])  # feed by its real name too
    np.testing.assert_array_equal(by_feed_name["labels"], everything["labels"])


@pytest.mark.parametrize("mode", MODES)
def test_legacy_fetch_name_resolves_to_the_only_output(make: Callable[..., ServingClient], mode: str) -> None:
    client = make(mode)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = client.predict({"image": PORTRAIT_INPUT}, fetch=[LEGACY_NAME])
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(messages) == 1 and LEGACY_NAME in messages[0] and "fetch_name_0" in messages[0]
    assert caught[0].filename == __file__  # the warning points at the caller's line
    assert sorted(out) == sorted(["fetch_name_0", LEGACY_NAME])
    np.testing.assert_array_equal(out[LEGACY_NAME], out["fetch_name_0"])
    plain = client.predict({"image": PORTRAIT_INPUT}, fetch=["fetch_name_0"])
    np.testing.assert_array_equal(plain["fetch_name_0"], out["fetch_name_0"])


@pytest.mark.parametrize("mode", MODES)
def test_unknown_fetch_name_on_a_multi_output_model(make: Callable[..., ServingClient], mode: str) -> None:
    client = make(mode, MULTI)
    with pytest.raises(UnknownFetchName) as unknown:
        client.predict({FEED_ALIAS: MULTI_INPUT}, fetch=[LEGACY_NAME])
    error = unknown.value
    assert isinstance(error, InvalidInput) and not isinstance(error, KeyError)
    assert error.status == 400
    for alias, name in FETCH.items():
        assert alias in error.message and name in error.message


@pytest.mark.parametrize("mode", MODES)
def test_unknown_feed_name_is_invalid_input(make: Callable[..., ServingClient], mode: str) -> None:
    with pytest.raises(InvalidInput, match="unknown feed name 'img'"):  # (one wrong name alone maps to the input)
        make(mode).predict({"image": PORTRAIT_INPUT, "img": PORTRAIT_INPUT}, fetch=["fetch_name_0"])
    with pytest.raises(InvalidInput, match="missing feed"):
        make(mode, MULTI).predict({}, fetch=["labels"])


@pytest.mark.parametrize("mode", MODES)
def test_wrong_shape_is_refused_by_the_server(make: Callable[..., ServingClient], mode: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        make(mode).predict({"image": PORTRAIT_INPUT[:, :100]}, fetch=["fetch_name_0"])
    assert refused.value.status == 400


@pytest.mark.parametrize("mode", MODES)
def test_unknown_model_and_no_server(make: Callable[..., ServingClient], mode: str) -> None:
    with pytest.raises(ModelNotFound):
        make(mode, "nope").predict({"image": PORTRAIT_INPUT}, fetch=["fetch_name_0"])
    down = make(mode, endpoint=f"127.0.0.1:{free_port()}")
    down.retries = 0
    with pytest.raises(Unavailable):
        down.predict({"image": PORTRAIT_INPUT}, fetch=["fetch_name_0"])


# ----- request compression, seen on the wire -----
@pytest.fixture
def relay(server: ServerProcess) -> Iterator[RecordingRelay]:
    relay = RecordingRelay(server.port)
    yield relay
    relay.close()


def _request_body(raw: bytes) -> tuple[str, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return head.decode("latin-1").lower(), body


@pytest.mark.parametrize("mode", ["proto", "json"])
def test_request_compression_sends_gzip(make: Callable[..., ServingClient], relay: RecordingRelay, mode: str) -> None:
    plain = make(mode).predict({"image": PORTRAIT_INPUT}, fetch=["fetch_name_0"])
    client = make(mode, endpoint=f"127.0.0.1:{relay.port}")
    client.set_request_compress(True)
    out = client.predict({"image": PORTRAIT_INPUT}, fetch=["fetch_name_0"])
    _assert_same(out, plain)
    head, body = _request_body(bytes(relay.sent))
    assert "content-encoding: gzip" in head
    assert body[:2] == b"\x1f\x8b"
    inflated = gzip.decompress(body)
    assert len(inflated) > len(body)
    if mode == "json":
        assert inflated.startswith(b'{"fetch_var_names"')


def test_without_compression_the_body_is_plain(make: Callable[..., ServingClient], relay: RecordingRelay) -> None:
    make("proto", endpoint=f"127.0.0.1:{relay.port}").predict({"image": PORTRAIT_INPUT}, fetch=["fetch_name_0"])
    head, body = _request_body(bytes(relay.sent))
    assert "content-encoding" not in head and "content-type: application/proto" in head
    assert len(body) > PORTRAIT_INPUT.nbytes
