"""IdPhotoOptions.parse: query-string parameters to options."""

from __future__ import annotations

import pytest

from idphoto.errors import IdPhotoError
from idphoto.pipeline import IdPhotoOptions
from idphoto.presets import BACKGROUNDS, SHEETS, SIZE_PRESETS


def test_defaults() -> None:
    options = IdPhotoOptions.parse({})
    assert options == IdPhotoOptions()
    assert options.background is BACKGROUNDS["white"]
    assert options.size is SIZE_PRESETS["1inch"]
    assert (options.crop, options.max_kb, options.sheet, options.refine) == ("face", None, None, True)
    assert options.output_format == "jpeg"


def test_every_parameter() -> None:
    options = IdPhotoOptions.parse(
        {
            "background": "blue",
            "size": "2inch",
            "crop": "NONE",
            "format": "jpg",
            "max_kb": "40",
            "sheet": "4R",
            "refine": "off",
        }
    )
    assert options.background is BACKGROUNDS["blue"]
    assert options.size is SIZE_PRESETS["2inch"]
    assert (options.crop, options.format, options.max_kb, options.sheet, options.refine) == (
        "none",
        "jpeg",
        40,
        SHEETS["4R"],
        False,
    )


def test_custom_size_empty_values_and_no_sheet() -> None:
    options = IdPhotoOptions.parse({"width": "500", "height": "700", "size": "", "sheet": "none", "max_kb": " "})
    assert options.size.px == (500, 700)
    assert options.sheet is None and options.max_kb is None


def test_transparent_defaults_to_png() -> None:
    assert IdPhotoOptions.parse({"background": "transparent"}).output_format == "png"
    assert IdPhotoOptions.parse({"background": "transparent", "format": "PNG"}).output_format == "png"


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"backgroud": "blue"}, "unknown parameter"),
        ({"background": "transparent", "format": "jpeg"}, "needs format=png"),
        ({"format": "gif"}, "jpeg, jpg, png"),
        ({"crop": "head"}, "face, none"),
        ({"max_kb": "ten"}, "whole number"),
        ({"max_kb": "0"}, "max_kb must be"),
        ({"refine": "maybe"}, "true or false"),
        ({"sheet": "A5"}, "4R, 5inch, A4"),
        ({"size": "9inch"}, "1inch"),
    ],
)
def test_bad_parameters_are_400(params: dict[str, str], needle: str) -> None:
    with pytest.raises(IdPhotoError, match=needle) as caught:
        IdPhotoOptions.parse(params)
    assert caught.value.status == 400
