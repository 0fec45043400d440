"""Named presets (photo sizes, backgrounds, print sheets) and the parsers that turn request values into them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from idphoto.crop import ICAO_RULES, ID_RULES, HeadRules
from idphoto.errors import IdPhotoError

DPI = 300
MM_PER_INCH = 25.4
CUSTOM_SIDE_RANGE = (64, 4096)  # custom photo sides, px
MAX_ASPECT = 4.0  # custom photos: the longer side at most this many times the shorter


@dataclass(frozen=True)
class SizePreset:
    """A photo size: px at 300 DPI and mm; `px` is None for 'original' (keep the image's size, no crop)."""

    name: str
    label_en: str
    label_zh: str
    px: tuple[int, int] | None
    mm: tuple[float, float] | None
    rules: HeadRules = ID_RULES


@dataclass(frozen=True)
class Background:
    """A background: an RGB colour, or None for a transparent one."""

    name: str
    label_en: str
    label_zh: str
    rgb: tuple[int, int, int] | None

    @property
    def bgr(self) -> tuple[int, int, int]:
        if self.rgb is None:
            raise ValueError("a transparent background has no colour")
        return self.rgb[2], self.rgb[1], self.rgb[0]


@dataclass(frozen=True)
class SheetSpec:
    """A print sheet, landscape, at 300 DPI."""

    name: str
    label_en: str
    label_zh: str
    px: tuple[int, int]
    inches: tuple[float, float]


def _mm(px: tuple[int, int]) -> tuple[float, float]:
    return round(px[0] / DPI * MM_PER_INCH, 1), round(px[1] / DPI * MM_PER_INCH, 1)


SIZE_PRESETS: dict[str, SizePreset] = {
    p.name: p
    for p in (
        SizePreset("original", "Original size (no crop)", "原图尺寸（不裁剪）", None, None),
        SizePreset("1inch", "1 inch (25×35 mm)", "一寸 (25×35 mm)", (295, 413), (25, 35)),
        SizePreset("1inch-large", "Large 1 inch (33×48 mm)", "大一寸 (33×48 mm)", (390, 567), (33, 48)),
        SizePreset(
            "2inch-small",
            "Small 2 inch (35×45 mm, ICAO passport/visa)",
            "小二寸 (35×45 mm)",
            (413, 531),
            (35, 45),
            ICAO_RULES,
        ),
        SizePreset("2inch", "2 inch (35×53 mm)", "二寸 (35×53 mm)", (413, 626), (35, 53)),
    )
}

BACKGROUNDS: dict[str, Background] = {
    b.name: b
    for b in (
        Background("white", "White (passports, visas, ID cards)", "白色（护照、签证、身份证）", (255, 255, 255)),
        Background("blue", "ID blue", "蓝色", (0x43, 0x8E, 0xDB)),
        Background("red", "ID red", "红色", (0xFF, 0x00, 0x00)),
        Background("transparent", "Transparent (PNG only)", "透明（仅 PNG）", None),
    )
}

SHEETS: dict[str, SheetSpec] = {
    s.name: s
    for s in (
        SheetSpec("4R", "6 inch / 4R (4×6 in)", "六寸 (4R)", (1800, 1200), (6, 4)),
        SheetSpec("5inch", "5 inch / 3R (3.5×5 in)", "五寸 (3R)", (1500, 1050), (5, 3.5)),
    )
}

_SIZE_PATTERN = re.compile(r"^(\d+)\s*[x×*]\s*(\d+)$")  # matched against the stripped, lower-cased value
_HEX_PATTERN = re.compile(r"^#?([0-9a-f]{6})$")


def custom_size(width: int, height: int) -> SizePreset:
    """A custom size in px (at 300 DPI), validated."""
    low, high = CUSTOM_SIDE_RANGE
    if not (low <= width <= high and low <= height <= high):
        raise IdPhotoError(400, f"custom size {width}x{height} px: each side must be {low}-{high} px")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise IdPhotoError(400, f"custom size {width}x{height} px: the aspect ratio may be at most {MAX_ASPECT:g}:1")
    return SizePreset(
        f"{width}x{height}",
        f"Custom {width}×{height} px",
        f"自定义 {width}×{height} px",
        (width, height),
        _mm((width, height)),
    )


def _int_param(name: str, value: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise IdPhotoError(400, f"{name} must be a whole number of pixels, got {value!r}") from None


def parse_size(name: str | None, width: str | None = None, height: str | None = None) -> SizePreset:
    """A preset name, 'WxH' in px, or 'custom' (or no name) with `width` and `height`."""
    valid = f"use one of: {', '.join(SIZE_PRESETS)}, 'WxH' in px (e.g. 413x531), or size=custom with width and height"
    key = (name or "").strip().lower()
    if width is not None or height is not None:
        if key not in ("", "custom"):
            raise IdPhotoError(400, f"width/height go with size=custom, not size={name!r}")
        if width is None or height is None:
            raise IdPhotoError(400, "a custom size needs both width and height (px)")
        return custom_size(_int_param("width", width), _int_param("height", height))
    if key in SIZE_PRESETS:
        return SIZE_PRESETS[key]
    match = _SIZE_PATTERN.match(key)
    if match:
        return custom_size(int(match[1]), int(match[2]))
    if key == "custom":
        raise IdPhotoError(400, "size=custom needs width and height (px)")
    raise IdPhotoError(400, f"unknown size {name!r}; {valid}")


def parse_background(value: str) -> Background:
    """A preset name, '#RRGGBB', 'RRGGBB' or 'r,g,b' (0-255)."""
    key = value.strip().lower()
    if key in BACKGROUNDS:
        return BACKGROUNDS[key]
    rgb: tuple[int, int, int] | None = None
    match = _HEX_PATTERN.match(key)
    if match:
        digits = match[1]
        rgb = (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))
    elif key.count(",") == 2:
        try:
            r, g, b = (int(part) for part in key.split(","))
        except ValueError:
            pass
        else:
            if all(0 <= c <= 255 for c in (r, g, b)):
                rgb = (r, g, b)
    if rgb is None:
        raise IdPhotoError(
            400,
            f"unknown background {value!r}; use one of: {', '.join(BACKGROUNDS)},"
            " '#RRGGBB', 'RRGGBB' or 'r,g,b' (0-255)",
        )
    hex_name = "#{:02X}{:02X}{:02X}".format(*rgb)
    return Background(hex_name, f"Colour {hex_name}", f"自定义颜色 {hex_name}", rgb)


def parse_sheet(value: str) -> SheetSpec:
    """A print sheet by name (case-insensitive)."""
    by_key = {name.lower(): spec for name, spec in SHEETS.items()}
    key = value.strip().lower()
    if key not in by_key:
        raise IdPhotoError(400, f"unknown sheet {value!r}; use one of: {', '.join(SHEETS)}")
    return by_key[key]
