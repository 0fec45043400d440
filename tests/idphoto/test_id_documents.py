"""Every size preset's photo, made from the test portrait and its turned copies, measured against the preset's own
rules: pixel size and DPI, head height (crown to chin), space above the crown, the eye line's height, a level eye
line, the background the document accepts."""

from __future__ import annotations

import io
from collections.abc import Callable

import cv2
import numpy as np
import pytest
from PIL import Image

from idphoto.errors import IdPhotoError
from idphoto.face import detect_faces
from idphoto.pipeline import IdPhotoOptions, make_id_photo
from idphoto.presets import BACKGROUNDS, SIZE_PRESETS
from idphoto.sizes import SizePreset

PRESETS = [p for p in SIZE_PRESETS.values() if p.px is not None]
TURNS = (-8, 0, 8)  # degrees, on top of the 3 degrees her head leans in the original
SHIFT = (-160, 60)  # and one copy with her off-centre: 160 px left, 60 px down (edges filled from the nearest pixels)
TOLERANCE = 0.01  # of the height: what measuring the crown on the photo's background edge may add


@pytest.fixture(scope="module")
def portraits(astronaut: np.ndarray, person_probability: Callable[[np.ndarray], np.ndarray]
              ) -> dict[str, tuple[np.ndarray, np.ndarray]]:  # fmt: skip
    """The astronaut at 1024 px (large enough for every size without upscaling past 2x), turned by each of TURNS
    and shifted by SHIFT, with the portrait model's person probability for each."""
    large = cv2.resize(astronaut, (1024, 1024), interpolation=cv2.INTER_CUBIC)
    matrices = {f"turned {d}": cv2.getRotationMatrix2D((512, 512), d, 1.0) for d in TURNS}
    matrices[f"shifted {SHIFT}"] = np.array([[1.0, 0.0, SHIFT[0]], [0.0, 1.0, SHIFT[1]]])
    out = {}
    for name, matrix in matrices.items():
        image = cv2.warpAffine(large, matrix, (1024, 1024), borderMode=cv2.BORDER_REPLICATE)
        out[name] = image, person_probability(image)
    return out


def measure(image: np.ndarray, background: tuple[int, int, int]) -> dict[str, float]:
    """Head, crown margin and eye height as fractions of the photo's height, and the eye line's tilt."""
    (face,) = detect_faces(image)
    height = image.shape[0]
    x0, x1 = round(face.box.cx - face.box.w / 4), round(face.box.cx + face.box.w / 4)
    band = image[:, x0:x1].astype(int)
    is_background = np.abs(band - np.array(background[::-1])).max(axis=2) <= 12
    crown = int(np.flatnonzero(~is_background.all(axis=1))[0])
    return {
        "head": (face.chin.y - crown) / height,
        "margin": crown / height,
        "eyes": (height - face.eye_center.y) / height,
        "tilt": abs(face.roll_degrees),
        "centre": face.eye_center.x / image.shape[1],
    }


def within(value: float, band: tuple[float, float]) -> bool:
    return band[0] - TOLERANCE <= value <= band[1] + TOLERANCE


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_every_preset_meets_its_rules(preset: SizePreset, portraits: dict[str, tuple[np.ndarray, np.ndarray]]
                                      ) -> None:  # fmt: skip
    options = IdPhotoOptions.parse({"size": preset.name})
    rgb = options.background.rgb
    assert rgb is not None and (preset.backgrounds is None or options.background.name == preset.backgrounds[0])
    for copy, (image, probability) in portraits.items():
        result = make_id_photo(image, probability, options)
        picture = Image.open(io.BytesIO(result.photo))
        assert picture.size == preset.px and picture.info["dpi"] == pytest.approx((preset.dpi, preset.dpi), abs=0.01)
        seen = measure(result.image, rgb)
        rules = preset.rules
        report = f"{preset.name}, {copy}: {seen}"
        assert seen["tilt"] <= 1.0, report
        assert abs(seen["centre"] - 0.5) <= 0.03, report  # the face centred whatever its place in the source
        assert within(seen["head"], rules.head_band), report
        assert within(seen["margin"], rules.margin_band), report
        if rules.eye_band is not None:
            assert within(seen["eyes"], rules.eye_band), report


def test_there_are_twenty_documents_with_their_rules_in_mm() -> None:
    official = [p for p in PRESETS if p.rules.strict and p.document]
    assert len(PRESETS) >= 25 and len(official) >= 17
    icao = SIZE_PRESETS["schengen-visa"].as_json()
    assert (icao["mm"], icao["px"], icao["dpi"], icao["head_mm"], icao["crown_margin_mm"]) == (
        [35, 45],
        [413, 531],
        300,
        [32.0, 36.0],
        [3.0, 5.0],
    )
    us = SIZE_PRESETS["us-passport"].as_json()
    assert (us["px"], us["head_mm"], us["eyes_above_bottom_mm"], us["backgrounds"]) == (
        [600, 600],
        [25.4, 34.9],
        [28.6, 34.9],
        ["white"],
    )
    card = SIZE_PRESETS["cn-id-card"]
    assert (card.px, card.dpi) == ((358, 441), 350)
    for preset in official:
        assert preset.backgrounds and all(name in BACKGROUNDS for name in preset.backgrounds)


def test_a_background_the_document_refuses_is_400() -> None:
    with pytest.raises(IdPhotoError, match=r"US passport / visa .* photos need a white background, not blue") as caught:
        IdPhotoOptions.parse({"size": "us-passport", "background": "blue"})
    assert caught.value.status == 400
    assert IdPhotoOptions.parse({"size": "uk-passport"}).background.name == "light-grey"


def test_a_photo_cut_below_the_chin_is_refused_naming_the_rule(astronaut: np.ndarray,
                                                               person_probability: Callable[[np.ndarray], np.ndarray]
                                                               ) -> None:  # fmt: skip
    large = cv2.resize(astronaut, (1024, 1024), interpolation=cv2.INTER_CUBIC)[:365]  # ends just below her chin
    with pytest.raises(IdPhotoError, match="ends too close below the chin: the head must be 71%-80%") as caught:
        make_id_photo(large, person_probability(large), IdPhotoOptions.parse({"size": "schengen-visa"}))
    assert caught.value.status == 422
