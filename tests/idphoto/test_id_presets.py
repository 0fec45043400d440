"""Size, background and sheet presets and their parsers."""

from __future__ import annotations

import pytest

from idphoto.errors import IdPhotoError
from idphoto.presets import (
    BACKGROUNDS,
    SHEETS,
    SIZE_PRESETS,
    custom_size,
    parse_background,
    parse_sheet,
    parse_size,
)
from idphoto.sizes import ICAO_RULES, ID_RULES


@pytest.mark.parametrize(
    ("name", "px", "mm"),
    [
        ("1inch", (295, 413), (25, 35)),
        ("1inch-large", (390, 567), (33, 48)),
        ("2inch-small", (413, 531), (35, 45)),
        ("2inch", (413, 626), (35, 53)),
    ],
)
def test_size_presets(name: str, px: tuple[int, int], mm: tuple[int, int]) -> None:
    preset = parse_size(name)
    assert preset is SIZE_PRESETS[name]
    assert (preset.px, preset.mm) == (px, mm)
    for side_px, side_mm in zip(px, mm, strict=True):  # px are the mm at 300 DPI, to the nearest pixel
        assert abs(side_px - side_mm / 25.4 * 300) < 1
    assert preset.label_en and preset.label_zh


def test_original_keeps_size_and_icao_rules_for_35x45() -> None:
    assert parse_size(" Original ").px is None
    assert SIZE_PRESETS["2inch-small"].rules == ICAO_RULES
    assert SIZE_PRESETS["1inch"].rules == ID_RULES


@pytest.mark.parametrize(
    ("name", "width", "height"),
    [("600x800", None, None), ("600 × 800", None, None), (None, "600", "800"), ("custom", "600", "800")],
)
def test_custom_sizes(name: str | None, width: str | None, height: str | None) -> None:
    preset = parse_size(name, width, height)
    assert preset.px == (600, 800)
    assert preset.mm == (50.8, 67.7)
    assert preset.rules == ID_RULES


@pytest.mark.parametrize(
    ("name", "width", "height", "needle"),
    [
        ("3inch", None, None, "original, 1inch, 1inch-small, 1inch-large, 2inch-small, 2inch,"),
        ("custom", None, None, "needs width and height"),
        ("1inch", "300", "400", "size=custom"),
        (None, "300", None, "both width and height"),
        (None, "3OO", "400", "whole number"),
        ("10x800", None, None, "64-4096"),
        ("100x800", None, None, "aspect ratio"),
    ],
)
def test_bad_sizes(name: str | None, width: str | None, height: str | None, needle: str) -> None:
    with pytest.raises(IdPhotoError, match=needle) as caught:
        parse_size(name, width, height)
    assert caught.value.status == 400


def test_custom_size_limits() -> None:
    assert custom_size(64, 256).px == (64, 256)
    with pytest.raises(IdPhotoError):
        custom_size(4097, 4096)


@pytest.mark.parametrize(
    ("value", "rgb"),
    [
        ("white", (255, 255, 255)),
        ("BLUE", (0x43, 0x8E, 0xDB)),
        ("red", (255, 0, 0)),
        ("#438edb", (0x43, 0x8E, 0xDB)),
        ("438EDB", (0x43, 0x8E, 0xDB)),
        ("12, 34 ,56", (12, 34, 56)),
        ("0,0,0", (0, 0, 0)),
    ],
)
def test_backgrounds(value: str, rgb: tuple[int, int, int]) -> None:
    background = parse_background(value)
    assert background.rgb == rgb
    assert background.bgr == rgb[::-1]
    assert background.label_en and background.label_zh


def test_custom_colour_named_by_hex_and_transparent_has_no_colour() -> None:
    assert parse_background("12,34,56").name == "#0C2238"
    transparent = parse_background("transparent")
    assert transparent is BACKGROUNDS["transparent"] and transparent.rgb is None
    with pytest.raises(ValueError, match="no colour"):
        _ = transparent.bgr


@pytest.mark.parametrize("value", ["green", "#12345", "#GG0000", "1,2", "1,2,256", "-1,0,0", "a,b,c", ""])
def test_bad_backgrounds(value: str) -> None:
    with pytest.raises(IdPhotoError, match="white, blue, red, light-grey, cream, transparent") as caught:
        parse_background(value)
    assert caught.value.status == 400


def test_sheets() -> None:
    assert parse_sheet("4r") is SHEETS["4R"]
    assert SHEETS["4R"].px == (1800, 1200)  # 6 x 4 in at 300 DPI, landscape
    assert parse_sheet("5INCH").px == (1500, 1050)  # 5 x 3.5 in
    assert parse_sheet("a4").px == (2480, 3508)  # 210 x 297 mm, portrait
    with pytest.raises(IdPhotoError, match="4R, 5inch, A4") as caught:
        parse_sheet("A5")
    assert caught.value.status == 400


def test_custom_sizes_in_mm_at_a_dpi() -> None:
    preset = parse_size("custom", width_mm="35", height_mm="45", dpi="600")
    assert (preset.px, preset.mm, preset.dpi) == ((827, 1063), (35.0, 45.0), 600)
    assert parse_size(None, width_mm="25", height_mm="35").px == (295, 413)  # 300 DPI by default
    assert parse_size(None, width="600", height="800", dpi="600").dpi == 600


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"width_mm": "35"}, "needs width_mm and height_mm"),
        ({"width_mm": "35", "height_mm": "45", "width": "400"}, "no width/height"),
        ({"width_mm": "35", "height_mm": "4.5"}, "height_mm must be a length in mm from 5 to 500"),
        ({"width_mm": "35", "height_mm": "45", "dpi": "5000"}, "dpi must be 72-1200"),
        ({"width": "300", "height": "400", "dpi": "ten"}, "dpi must be a whole number"),
    ],
)
def test_bad_custom_sizes_in_mm(kwargs: dict[str, str], needle: str) -> None:
    with pytest.raises(IdPhotoError, match=needle) as caught:
        parse_size("custom", **kwargs)
    assert caught.value.status == 400
