"""POST /v1/models/{name}/segment end to end on a real server: encoded images in, label maps / probabilities /
overlays / JSON out at the original size, equal to the in-process SegmentationPipeline on the same bytes."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from conftest import ServerProcess, start_server
from PIL import Image
from skimage import data

from segcore.engines import EngineOptions, create_engine
from segcore.pipeline import SegmentationPipeline
from segcore.postprocess import SegmentationResult
from segcore.repository import ModelRepository, load_spec

ASTRONAUT = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)  # 512 x 512, a person in front of a backdrop
WIDE = cv2.resize(ASTRONAUT, (300, 200), interpolation=cv2.INTER_AREA)  # non-square, w=300 h=200
LARGE = cv2.resize(ASTRONAUT, (1000, 700), interpolation=cv2.INTER_LINEAR)
CODECS = {"jpeg": (".jpg", "image/jpeg"), "png": (".png", "image/png"), "webp": (".webp", "image/webp"),
          "bmp": (".bmp", "image/bmp")}  # fmt: skip
TINY = ("pir_interp", "pir_softmax", "legacy_multi")


def encode(image: np.ndarray, fmt: str) -> bytes:
    ok, buf = cv2.imencode(CODECS[fmt][0], image)
    assert ok
    return buf.tobytes()


def decode(body: bytes) -> np.ndarray:
    """A response image exactly as stored (gray stays 2-D)."""
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None
    return image


@pytest.fixture(scope="module")
def entries(converted: Callable[[str], Path]) -> dict[str, Path]:
    return {kind: converted(kind) for kind in TINY}


@pytest.fixture(scope="module")
def server(entries: dict[str, Path], module_tmp: Path) -> Iterator[ServerProcess]:
    with start_server(module_tmp, "--thread", "1", "--model", "portrait", *entries.values()) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def pipeline(http: httpx.Client, entries: dict[str, Path]) -> Callable[[str], SegmentationPipeline]:
    """pipeline(model) -> the in-process pipeline on the engine kind the server reports for that model."""
    cache: dict[str, SegmentationPipeline] = {}

    def get(name: str) -> SegmentationPipeline:
        if name not in cache:
            spec = ModelRepository().load(name) if name == "portrait" else load_spec(entries[name])
            platform = http.get(f"/v1/models/{name}").json()["platform"]
            engine = create_engine(spec.server_dir, spec.config, platform, EngineOptions(cpu_threads=1))
            cache[name] = SegmentationPipeline(spec.config, engine)
        return cache[name]

    return get


def local(pipeline: SegmentationPipeline, body: bytes) -> SegmentationResult:
    return pipeline.segment(cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR), want_scores=True)


def as_u8(probability: np.ndarray) -> np.ndarray:
    """round(p * 255) computed exactly (in float64: a float32 product can land on .5 and round the other way)."""
    return np.clip(np.rint(probability.astype(np.float64) * 255), 0, 255).astype(np.uint8)


def segment(http: httpx.Client, body: bytes, model: str = "portrait", content_type: str = "image/png",
            **params: object) -> httpx.Response:  # fmt: skip
    return http.post(f"/v1/models/{model}/segment", content=body, params=params, headers={"Content-Type": content_type})


@pytest.mark.parametrize("fmt", list(CODECS))
@pytest.mark.parametrize("image", [WIDE, LARGE], ids=["300x200", "1000x700"])
def test_label_map_at_original_size_equals_pipeline(http, pipeline, fmt: str, image: np.ndarray) -> None:
    body = encode(image, fmt)
    reply = segment(http, body, content_type=CODECS[fmt][1])
    assert reply.status_code == 200, reply.text
    assert reply.headers["Content-Type"] == "image/png"
    labels = decode(reply.content)
    assert labels.shape == image.shape[:2] and labels.dtype == np.uint8  # single channel, H x W
    assert Image.open(io.BytesIO(reply.content)).mode == "L"
    assert set(np.unique(labels).tolist()) <= {0, 1}
    np.testing.assert_array_equal(labels, local(pipeline("portrait"), body).label_map, strict=True)


def test_image_bytes_are_sniffed_whatever_the_content_type(http, pipeline) -> None:
    """curl --data-binary sends application/x-www-form-urlencoded; the bytes decide, not the header."""
    body = encode(WIDE, "webp")
    want = local(pipeline("portrait"), body).label_map
    types = ("application/octet-stream", "application/x-www-form-urlencoded", "text/plain", "image/png")
    for headers in ({}, *({"Content-Type": t} for t in types)):
        reply = http.post("/v1/models/portrait/segment", content=body, headers=headers)
        assert reply.status_code == 200, reply.text
        np.testing.assert_array_equal(decode(reply.content), want, strict=True)


def test_multipart_field_image(http, pipeline) -> None:
    body = encode(WIDE, "jpeg")
    files = {"image": ("photo.jpg", body, "image/jpeg")}
    reply = http.post("/v1/models/portrait/segment", files=files)
    assert reply.status_code == 200, reply.text
    np.testing.assert_array_equal(decode(reply.content), local(pipeline("portrait"), body).label_map, strict=True)
    # other form fields are options, like the query string
    reply = http.post("/v1/models/portrait/segment", files=files, data={"output": "json"})
    assert reply.status_code == 200 and reply.json()["width"] == 300


def test_multipart_without_file_is_400(http) -> None:
    reply = http.post("/v1/models/portrait/segment", data={"output": "label"}, files={"x": ("", b"", "text/plain")})
    assert reply.status_code in (400, 415)
    reply = http.post("/v1/models/portrait/segment", data={"output": "label"},
                      headers={"Content-Type": "multipart/form-data; boundary=zz"})  # fmt: skip
    assert reply.status_code == 400


@pytest.mark.parametrize("output", ["probability", "alpha"])
def test_probability_png_is_rounded_person_score(http, pipeline, output: str) -> None:
    body = encode(WIDE, "png")
    reply = segment(http, body, output=output)
    assert reply.status_code == 200, reply.text
    assert reply.headers["Content-Type"] == "image/png"
    got = decode(reply.content)
    assert got.shape == (200, 300) and got.dtype == np.uint8
    scores = local(pipeline("portrait"), body).scores
    np.testing.assert_array_equal(got, as_u8(scores[1]), strict=True)
    background = decode(segment(http, body, output=output, class_id=0).content)
    np.testing.assert_array_equal(background, as_u8(scores[0]), strict=True)


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_overlay_has_image_size_and_three_channels(http, fmt: str) -> None:
    reply = segment(http, encode(WIDE, "png"), output="overlay", format=fmt)
    assert reply.status_code == 200, reply.text
    assert reply.headers["Content-Type"] == f"image/{fmt}"
    overlay = decode(reply.content)
    assert overlay.shape == (200, 300, 3) and overlay.dtype == np.uint8


def test_overlay_alpha_blends_class_colours(http, pipeline) -> None:
    body = encode(WIDE, "png")
    labels = local(pipeline("portrait"), body).label_map
    unchanged = decode(segment(http, body, output="overlay", alpha=0).content)
    np.testing.assert_array_equal(unchanged, WIDE, strict=True)
    painted = decode(segment(http, body, output="overlay", alpha=1).content)
    colours = {c: np.unique(painted[labels == c], axis=0) for c in (0, 1)}
    assert all(len(v) == 1 for v in colours.values())  # alpha 1: each pixel is its class's colour
    assert not np.array_equal(colours[0], colours[1])
    half = decode(segment(http, body, output="overlay").content).astype(int)
    assert not np.array_equal(half, WIDE) and not np.array_equal(half, painted)


def test_json_output(http, pipeline) -> None:
    body = encode(LARGE, "jpeg")
    reply = segment(http, body, content_type="image/jpeg", output="json")
    assert reply.status_code == 200, reply.text
    assert reply.headers["Content-Type"] == "application/json"
    doc = reply.json()
    assert (doc["width"], doc["height"]) == (1000, 700)
    assert doc["class_names"] == ["background", "person"] and doc["num_classes"] == 2
    want = local(pipeline("portrait"), body)
    labels = decode(base64.b64decode(doc["label_map"]))
    np.testing.assert_array_equal(labels, want.label_map, strict=True)
    assert doc["classes_present"] == [0, 1]
    assert {"preprocess", "inference", "postprocess"} <= set(doc["timings_ms"])
    assert all(v >= 0 for v in doc["timings_ms"].values())
    assert "probability" not in doc
    with_prob = segment(http, body, output="json", probability="true").json()
    assert with_prob["probability_class"] == 1
    np.testing.assert_array_equal(decode(base64.b64decode(with_prob["probability"])), as_u8(want.scores[1]))


def test_server_timing_header(http) -> None:
    reply = segment(http, encode(WIDE, "png"))
    stages = {}
    for part in reply.headers["Server-Timing"].split(","):
        name, _, dur = part.strip().partition(";dur=")
        stages[name] = float(dur)
    assert {"preprocess", "inference", "postprocess"} <= set(stages)
    assert all(v >= 0 for v in stages.values())


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_astronaut_person_mask_is_plausible(http, fmt: str) -> None:
    reply = segment(http, encode(ASTRONAUT, fmt), content_type=CODECS[fmt][1])
    labels = decode(reply.content)
    assert labels.shape == (512, 512)
    assert 0.15 <= labels.mean() <= 0.70  # the astronaut fills about half the frame
    assert not labels[:40, :40].any()  # top-left corner is backdrop
    assert labels[300:400, 200:300].mean() > 0.9  # the chest is person


def test_three_class_argmax_model(http, pipeline) -> None:
    body = encode(WIDE, "png")
    reply = segment(http, body, model="pir_interp")
    assert reply.status_code == 200, reply.text
    labels = decode(reply.content)
    assert labels.shape == (200, 300)
    assert set(np.unique(labels).tolist()) <= {0, 1, 2}
    np.testing.assert_array_equal(labels, local(pipeline("pir_interp"), body).label_map, strict=True)
    for output in ("probability", "alpha"):
        refused = segment(http, body, model="pir_interp", output=output)
        assert refused.status_code == 400
        assert "labels only" in refused.json()["error"]


def test_softmax_model_class_id(http, pipeline) -> None:
    body = encode(WIDE, "bmp")
    reply = segment(http, body, model="pir_softmax", output="probability", class_id=0)
    assert reply.status_code == 200, reply.text
    np.testing.assert_array_equal(decode(reply.content), as_u8(local(pipeline("pir_softmax"), body).scores[0]))
    for class_id in (2, -1):
        refused = segment(http, body, model="pir_softmax", output="probability", class_id=class_id)
        assert refused.status_code == 400
        assert "class_id" in refused.json()["error"]


@pytest.mark.parametrize(
    ("params", "word"),
    [
        ({"colour": "red"}, "colour"),
        ({"output": "mask"}, "output"),
        ({"format": "gif"}, "format"),
        ({"alpha": "2"}, "alpha"),
        ({"quality": "0"}, "quality"),
        ({"probability": "maybe"}, "probability"),
        ({"quality": "x"}, "quality"),
        ({"class_id": "one"}, "class_id"),
    ],
)
def test_bad_query_option_is_400_naming_it(http, params: dict[str, str], word: str) -> None:
    reply = segment(http, encode(WIDE, "png"), **params)
    assert reply.status_code == 400
    assert word in reply.json()["error"]


def test_model_without_deploy_yaml_has_no_image_api(http) -> None:
    reply = segment(http, encode(WIDE, "png"), model="legacy_multi")
    assert reply.status_code == 400
    message = reply.json()["error"]
    assert "deploy.yaml" in message and "tensor" in message


def test_bad_inputs(http) -> None:
    assert segment(http, encode(WIDE, "png"), model="nope").status_code == 404
    not_image = segment(http, b"hello, world", content_type="application/octet-stream")
    assert not_image.status_code == 415
    assert segment(http, b"hello, world", content_type="text/plain").status_code == 415
    truncated = segment(http, encode(WIDE, "png")[:-200])
    assert truncated.status_code == 400
    assert segment(http, b"").status_code == 400
