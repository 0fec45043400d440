"""The ID-photo app without a browser: the in-process backend and the messages the UI shows."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data

from app import service
from app.backend import BackendError, LocalBackend, PhotoRequest
from idphoto.presets import BACKGROUNDS


def jpeg(rgb: np.ndarray, path: Path | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=95)
    if path is not None:
        path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


@pytest.fixture(scope="module")
def backend() -> LocalBackend:
    return LocalBackend()


def test_standalone_backend_makes_a_blue_one_inch_photo(backend: LocalBackend) -> None:
    astronaut = data.astronaut()
    made = backend.make(jpeg(astronaut), PhotoRequest(background="blue", size="1inch"))
    assert (made.width, made.height, made.content_type, made.sheet) == (295, 413, "image/jpeg", None)
    with Image.open(io.BytesIO(made.photo)) as photo:
        assert photo.size == (295, 413)
        assert photo.info["dpi"] == pytest.approx((300, 300))
        pixels = np.asarray(photo.convert("RGB")).astype(int)
    blue = np.array(BACKGROUNDS["blue"].rgb)
    for corner in (pixels[0, 0], pixels[0, -1]):  # the bottom corners hold the shoulders
        assert np.abs(corner - blue).max() <= 8
    assert made.overlay.shape == astronaut.shape and made.overlay.dtype == np.uint8
    person = cv2.resize(made.overlay, (64, 64)).astype(int) - cv2.resize(astronaut, (64, 64)).astype(int)
    assert np.abs(person).mean() > 10  # tinted, not the photo passed through


def test_no_face_asks_for_the_whole_picture_and_keep_whole_picture_works(backend: LocalBackend,
                                                                          tmp_path: Path) -> None:  # fmt: skip
    path = tmp_path / "coffee.jpg"
    jpeg(data.coffee(), path)
    failed = service.generate(backend, tmp_path, str(path), PhotoRequest(background="red", crop="face"))
    assert not failed.ok and failed.overlay is None
    assert "保留整张图片" in failed.message and "Keep whole picture" in failed.message
    assert "no face" in failed.message  # the backend's own words stay underneath
    kept = service.generate(backend, tmp_path, str(path), PhotoRequest(background="red", crop="none"))
    assert kept.ok and kept.photo is not None and kept.photo.name == "id_photo_1inch_red.jpg"
    with Image.open(kept.photo) as photo:
        assert photo.size == (295, 413)


def test_too_small_and_missing_inputs_are_explained(backend: LocalBackend, tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.jpg"
    jpeg(cv2.resize(data.astronaut(), (100, 100), interpolation=cv2.INTER_AREA), tiny)
    small = service.generate(backend, tmp_path, str(tiny), PhotoRequest(crop="none"))
    assert not small.ok and "图片太小" in small.message and "too small" in small.message
    assert "上传" in service.generate(backend, tmp_path, None, PhotoRequest()).message
    custom = service.build_request("white", None, "custom", None, 400, "face", "jpeg", 0, "none", True)
    assert "width" in service.generate(backend, tmp_path, str(tiny), custom).message
    with pytest.raises(BackendError) as transparent_jpeg:
        backend.make(tiny.read_bytes(), PhotoRequest(background="transparent", format="jpeg"))
    assert transparent_jpeg.value.status == 400


def test_form_values_become_request_parameters_and_file_names(backend: LocalBackend, tmp_path: Path) -> None:
    request = service.build_request("custom", "rgba(51, 102, 204, 1)", "custom", 300, 400, "none", "png", 0,
                                    "4R", False)  # fmt: skip
    assert request.params() == {"background": "51,102,204", "size": "custom", "width": "300", "height": "400",
                                "crop": "none", "face": "single", "format": "png", "refine": "false",
                                "white_balance": "false", "brightness": "false", "sheet": "4R"}  # fmt: skip
    largest = service.build_request("white", None, "1inch", None, None, "face", "jpeg", 0, "none", True, True)
    assert largest.params()["face"] == "largest"
    picked = service.build_request("custom", "#3366CC", "2inch", 999, 999, "face", "jpeg", 50, "none", True)
    assert (picked.background, picked.width, picked.height, picked.max_kb, picked.sheet) == ("#3366CC", None, None,
                                                                                              50, None)  # fmt: skip
    path = tmp_path / "astronaut.jpg"
    jpeg(data.astronaut(), path)
    outcome = service.generate(backend, tmp_path, str(path), request)
    assert outcome.ok and outcome.photo is not None and outcome.sheet is not None
    assert (outcome.photo.name, outcome.sheet.name) == ("id_photo_300x400_3366cc.png",
                                                        "id_photo_300x400_3366cc_sheet_4r.png")  # fmt: skip
    with Image.open(outcome.photo) as photo:
        assert (photo.size, photo.mode) == ((300, 400), "RGB")


def test_custom_millimetres_and_tone_switches_from_the_form(backend: LocalBackend, tmp_path: Path) -> None:
    request = service.build_request("white", None, "custom", 35, 45, "face", "jpeg", 0, "none", True, False, None,
                                    True, True, "mm", 150)  # fmt: skip
    params = request.params()
    assert (params["width_mm"], params["height_mm"], params["dpi"]) == ("35.0", "45.0", "150")
    assert "width" not in params and (params["white_balance"], params["brightness"]) == ("true", "true")
    path = tmp_path / "astronaut.jpg"
    jpeg(data.astronaut(), path)
    outcome = service.generate(backend, tmp_path, str(path), request)
    assert outcome.ok and outcome.photo is not None, outcome.message
    assert outcome.photo.name == "id_photo_35x45mm_white.jpg" and "207×266 px, 150 DPI" in outcome.message
    with Image.open(outcome.photo) as photo:
        assert photo.size == (207, 266) and photo.info["dpi"] == pytest.approx((150, 150))
