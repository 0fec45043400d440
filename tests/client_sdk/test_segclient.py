"""SegClient.segment / segment_batch against a real server serving the bundled portrait model: every input kind, the
result at the original size, probabilities, gRPC, and the SegResult helpers on real results."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from sdk_support import PERSON_PX, encoded, huge_png_header, photo_bgr, photo_rgb, truncated_jpeg
from servers import ServerProcess, start_server

import client_sdk
from client_sdk import InvalidInput, SegClient, SegResult, SegServingError

W, H = 301, 199  # non-square on purpose
STEP = 1 / 255  # the probability map travels as an 8-bit PNG


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with start_server(tmp_path_factory.mktemp("sdk-segclient"), "--thread", "2") as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[SegClient]:
    with SegClient(server.address, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def grpc_client(server: ServerProcess) -> Iterator[SegClient]:
    with SegClient(server.address, protocol="grpc", timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def reference(client: SegClient) -> SegResult:
    """The picture sent as a BGR array (the default), with its probability map."""
    return client.segment(photo_bgr(W, H), probability=True)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("sdk-images")
    out = {"png": folder / "person.png", "jpeg": folder / "person.jpg"}
    out["png"].write_bytes(encoded(photo_rgb(W, H), "PNG"))
    out["jpeg"].write_bytes(encoded(photo_rgb(W, H), "JPEG"))
    return out


def _server_image(server: ServerProcess, body: bytes, **params: str) -> np.ndarray:
    """An image answer of the image API itself (no SDK), decoded as stored."""
    response = httpx.post(f"{server.url}/v1/models/portrait/segment", content=body, params=params, timeout=60,
                          headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    assert response.status_code == 200, response.text
    return np.array(Image.open(io.BytesIO(response.content)))


def test_array_result_is_at_the_original_size_with_two_classes(reference: SegResult) -> None:
    labels = reference.label_map
    assert labels.shape == (H, W)
    assert reference.size == (W, H)
    assert set(np.unique(labels).tolist()) == {0, 1}
    assert PERSON_PX < (labels == 1).mean() < 1 - PERSON_PX  # both the person and the backdrop are found
    assert reference.model == "portrait"
    assert reference.class_names == ["background", "person"]
    assert reference.num_classes == 2


def test_timings_are_reported_per_stage(reference: SegResult) -> None:
    assert {"preprocess", "inference", "postprocess"} <= set(reference.timings_ms)
    assert all(isinstance(v, float) and v >= 0 for v in reference.timings_ms.values())


@pytest.mark.parametrize("kind", ["str path", "Path", "png bytes", "bytearray", "memoryview", "PIL", "rgb array"])
def test_every_lossless_input_kind_gives_the_same_labels(client: SegClient, reference: SegResult,
                                                         files: dict[str, Path], kind: str) -> None:  # fmt: skip
    png = files["png"].read_bytes()
    image, rgb = {
        "str path": (str(files["png"]), False),
        "Path": (files["png"], False),
        "png bytes": (png, False),
        "bytearray": (bytearray(png), False),
        "memoryview": (memoryview(png), False),
        "PIL": (Image.open(files["png"]), False),
        "rgb array": (photo_rgb(W, H), True),
    }[kind]
    result = client.segment(image, rgb=rgb)
    assert result.label_map.shape == (H, W)
    np.testing.assert_array_equal(result.label_map, reference.label_map)


def test_rgb_flag_reads_the_array_as_rgb(client: SegClient, reference: SegResult) -> None:
    """An RGB array with rgb=True is the same picture as the BGR array: identical labels."""
    as_rgb = client.segment(photo_rgb(W, H), rgb=True, probability=True)
    np.testing.assert_array_equal(as_rgb.label_map, reference.label_map)
    assert as_rgb.probability is not None and reference.probability is not None
    np.testing.assert_array_equal(as_rgb.probability, reference.probability)


def test_jpeg_path_and_jpeg_bytes_are_sent_as_they_are(client: SegClient, reference: SegResult,
                                                       files: dict[str, Path]) -> None:  # fmt: skip
    by_path = client.segment(files["jpeg"])
    by_bytes = client.segment(files["jpeg"].read_bytes())
    assert by_path.label_map.shape == (H, W)
    np.testing.assert_array_equal(by_path.label_map, by_bytes.label_map)
    assert set(np.unique(by_path.label_map).tolist()) == {0, 1}
    assert (by_path.label_map == reference.label_map).mean() > 0.9  # the same picture, JPEG-compressed


def test_grayscale_and_rgba_inputs_are_accepted(client: SegClient) -> None:
    gray = Image.fromarray(photo_rgb(W, H)).convert("L")
    rgba = Image.fromarray(photo_rgb(W, H)).convert("RGBA")
    assert client.segment(gray).label_map.shape == (H, W)
    assert client.segment(np.asarray(rgba)[:, :, [2, 1, 0, 3]]).label_map.shape == (H, W)  # BGRA array


def test_probability_map_is_consistent_with_the_labels(client: SegClient, reference: SegResult) -> None:
    prob, labels = reference.probability, reference.label_map
    assert prob is not None
    assert prob.dtype == np.float32 and prob.shape == (H, W)
    assert prob.min() >= 0.0 and prob.max() <= 1.0
    assert reference.probability_class == 1
    # label 1 wherever the (8-bit rounded) probability is clearly above one half, 0 where clearly below
    assert (labels[prob >= 0.5 + STEP] == 1).all()
    assert (labels[prob <= 0.5 - STEP] == 0).all()
    assert prob.min() < 0.1 and prob.max() > 0.9
    plain = client.segment(photo_bgr(W, H))
    assert plain.probability is None and plain.probability_class is None
    np.testing.assert_array_equal(plain.label_map, labels)


def test_probability_of_another_class(client: SegClient, reference: SegResult) -> None:
    background = client.segment(photo_bgr(W, H), probability=True, class_id=0)
    assert background.probability_class == 0
    assert background.probability is not None and reference.probability is not None
    assert np.abs(background.probability + reference.probability - 1).max() <= STEP + 1e-6


def test_grpc_gives_the_identical_result(grpc_client: SegClient, reference: SegResult, files: dict[str, Path]) -> None:
    result = grpc_client.segment(photo_bgr(W, H), probability=True)
    np.testing.assert_array_equal(result.label_map, reference.label_map)
    assert result.probability is not None and reference.probability is not None
    np.testing.assert_array_equal(result.probability, reference.probability)
    assert (result.model, result.class_names, result.num_classes) == ("portrait", ["background", "person"], 2)
    assert {"preprocess", "inference", "postprocess"} <= set(result.timings_ms)
    np.testing.assert_array_equal(grpc_client.segment(files["png"]).label_map, reference.label_map)


def test_module_level_segment_one_shot(server: ServerProcess, reference: SegResult) -> None:
    result = client_sdk.segment(photo_bgr(W, H), endpoint=server.url)
    np.testing.assert_array_equal(result.label_map, reference.label_map)


def test_unknown_protocol_is_refused() -> None:
    with pytest.raises(ValueError, match="protocol"):
        SegClient("127.0.0.1:1", protocol="websocket")  # type: ignore[arg-type]


# ----- helpers on real results -----
def test_mask_is_the_person_class(reference: SegResult) -> None:
    mask = reference.mask()
    assert mask.dtype == bool and mask.shape == (H, W)
    np.testing.assert_array_equal(mask, reference.label_map == 1)
    np.testing.assert_array_equal(reference.mask(0), ~mask)


def test_overlay_matches_the_servers_overlay(server: ServerProcess, reference: SegResult) -> None:
    overlay = reference.overlay(photo_bgr(W, H))  # a BGR array in, BGR out
    assert overlay.shape == (H, W, 3) and overlay.dtype == np.uint8
    as_rgb = reference.overlay(photo_rgb(W, H), rgb=True)  # an RGB array in, RGB out
    np.testing.assert_array_equal(as_rgb, overlay[:, :, ::-1])
    # PaddleSeg's colours without black: background (128, 0, 0), person (0, 128, 0) in RGB, half and half
    rgb = photo_rgb(W, H).astype(np.float64)
    background = reference.label_map == 0
    want = np.rint(0.5 * rgb[background] + 0.5 * np.array([128, 0, 0]))
    assert np.abs(as_rgb[background].astype(np.int16) - want).max() <= 1
    server_overlay = _server_image(server, encoded(photo_rgb(W, H), "PNG"), output="overlay", format="png")
    assert server_overlay.shape == (H, W, 3)
    assert np.abs(server_overlay.astype(np.int16) - as_rgb).max() <= 1  # PIL reads the server's PNG as RGB
    # a decoded input kind of the same picture overlays the same, in the order asked for
    picture = Image.fromarray(photo_rgb(W, H))
    np.testing.assert_array_equal(reference.overlay(picture), overlay)
    np.testing.assert_array_equal(reference.overlay(picture, rgb=True), as_rgb)
    np.testing.assert_array_equal(reference.overlay(photo_bgr(W, H), alpha=0.0), photo_bgr(W, H))


def test_cutout_alpha_is_the_servers_probability(server: ServerProcess, reference: SegResult) -> None:
    bgr = photo_bgr(W, H)
    cutout = reference.cutout(bgr)
    assert cutout.shape == (H, W, 4) and cutout.dtype == np.uint8
    np.testing.assert_array_equal(cutout[:, :, :3], bgr)
    assert reference.probability is not None
    np.testing.assert_array_equal(cutout[:, :, 3], np.rint(reference.probability * 255).astype(np.uint8))
    server_alpha = _server_image(server, encoded(photo_rgb(W, H), "PNG"), output="probability")
    np.testing.assert_array_equal(cutout[:, :, 3], server_alpha)
    as_rgba = reference.cutout(photo_rgb(W, H), rgb=True)  # an RGB array in, RGBA out
    np.testing.assert_array_equal(as_rgba[:, :, :3], photo_rgb(W, H))
    np.testing.assert_array_equal(as_rgba[:, :, 3], cutout[:, :, 3])
    np.testing.assert_array_equal(reference.cutout(Image.fromarray(photo_rgb(W, H)), rgb=True), as_rgba)


def test_cutout_without_probability_uses_the_hard_mask(client: SegClient) -> None:
    result = client.segment(photo_bgr(W, H))
    alpha = result.cutout(photo_bgr(W, H))[:, :, 3]
    np.testing.assert_array_equal(alpha, np.where(result.label_map == 1, 255, 0).astype(np.uint8))


def test_save_round_trips_the_label_map(reference: SegResult, tmp_path: Path) -> None:
    path = reference.save(tmp_path / "labels.png")
    assert path == tmp_path / "labels.png"
    with Image.open(path) as png:
        assert png.mode == "L" and png.size == (W, H)
        np.testing.assert_array_equal(np.array(png), reference.label_map)


def test_helpers_refuse_an_image_of_another_size(reference: SegResult) -> None:
    other = photo_bgr(W + 1, H)
    with pytest.raises(ValueError, match="301x199"):
        reference.overlay(other)
    with pytest.raises(ValueError, match="301x199"):
        reference.cutout(other)


# ----- segment_batch -----
def test_batch_keeps_order_and_sizes(client: SegClient, files: dict[str, Path]) -> None:
    sizes = [(301, 199), (120, 240), (512, 512), (77, 50), (640, 360)]
    images: list[object] = [
        photo_bgr(*sizes[0]),
        encoded(photo_rgb(*sizes[1]), "PNG"),
        Image.fromarray(photo_rgb(*sizes[2])),
        encoded(photo_rgb(*sizes[3]), "JPEG"),
        photo_bgr(*sizes[4]),
    ]
    results = client.segment_batch(images, concurrency=3, progress=False)
    assert len(results) == len(images)
    for result, image, size in zip(results, images, sizes, strict=True):
        assert isinstance(result, SegResult)
        assert result.size == size
        np.testing.assert_array_equal(result.label_map, client.segment(image).label_map)


def test_batch_reports_failures_in_their_slots(client: SegClient, files: dict[str, Path], tmp_path: Path) -> None:
    missing = tmp_path / "no-such-file.jpg"
    images = [files["png"], missing, photo_bgr(200, 100), truncated_jpeg(), files["jpeg"], huge_png_header()]
    results = client.segment_batch(images, concurrency=4, progress=False)
    assert [type(r).__name__ for r in results] == ["SegResult", "InvalidInput", "SegResult", "InvalidInput",
                                                   "SegResult", "InvalidInput"]  # fmt: skip
    assert isinstance(results[1], InvalidInput) and "no-such-file.jpg" in results[1].message
    assert results[1].status == 0  # refused before sending: nothing to read
    assert isinstance(results[3], InvalidInput) and results[3].status == 400  # the server could not decode it
    assert "JPEG" in results[3].message
    assert isinstance(results[0], SegResult) and results[0].size == (W, H)
    assert isinstance(results[2], SegResult) and results[2].size == (200, 100)
    assert isinstance(results[4], SegResult) and results[4].size == (W, H)


@pytest.mark.parametrize("concurrency", [1, 8])
def test_batch_with_progress_bar_and_concurrency(client: SegClient, reference: SegResult, concurrency: int,
                                                 capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    results = client.segment_batch([photo_bgr(W, H)] * 6, concurrency=concurrency, probability=True)
    assert all(isinstance(r, SegResult) for r in results)
    for result in results:
        assert isinstance(result, SegResult)
        np.testing.assert_array_equal(result.label_map, reference.label_map)
        assert result.probability is not None
    assert "6/6" in capsys.readouterr().err  # tqdm's bar, on by default


def test_batch_accepts_any_iterable_and_empty(client: SegClient) -> None:
    results = client.segment_batch((photo_bgr(w, 64) for w in (64, 96)), progress=False)
    assert [r.size for r in results if isinstance(r, SegResult)] == [(64, 64), (96, 64)]
    assert client.segment_batch([], progress=False) == []


def test_image_too_big_for_pillow_is_invalid_input(client: SegClient) -> None:
    """A picture declaring more pixels than Pillow will open is an InvalidInput, not Pillow's own exception."""
    with pytest.raises(InvalidInput):
        client.segment(huge_png_header())
    assert issubclass(InvalidInput, SegServingError)
