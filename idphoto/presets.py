"""Named presets (photo sizes, backgrounds, print sheets) and the parsers that turn request values into them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from idphoto.errors import IdPhotoError
from idphoto.sizes import DPI, MM_PER_INCH, SIZE_PRESETS, SizePreset, px

CUSTOM_SIDE_RANGE = (64, 4096)  # custom photo sides, px
CUSTOM_DPI_RANGE = (72, 1200)
MAX_ASPECT = 4.0  # custom photos: the longer side at most this many times the shorter


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
    """A print sheet at 300 DPI (the photo papers landscape, A4 portrait)."""

    name: str
    label_en: str
    label_zh: str
    px: tuple[int, int]
    inches: tuple[float, float]


def _mm(size: tuple[int, int], dpi: int = DPI) -> tuple[float, float]:
    return round(size[0] / dpi * MM_PER_INCH, 1), round(size[1] / dpi * MM_PER_INCH, 1)


BACKGROUNDS: dict[str, Background] = {
    b.name: b
    for b in (
        Background("white", "White (passports, visas, ID cards)", "白色（护照、签证、身份证）", (255, 255, 255)),
        Background("blue", "ID blue", "蓝色", (0x43, 0x8E, 0xDB)),
        Background("red", "ID red", "红色", (0xFF, 0x00, 0x00)),
        Background("light-grey", "Light grey (passports that ask for it)", "浅灰色", (0xDC, 0xDC, 0xDC)),
        Background("cream", "Cream (UK passports)", "米色", (0xF3, 0xEE, 0xDD)),
        Background("transparent", "Transparent (PNG only)", "透明（仅 PNG）", None),
    )
}

SHEETS: dict[str, SheetSpec] = {
    s.name: s
    for s in (
        SheetSpec("4R", "6 inch / 4R (4×6 in)", "六寸 (4R)", (1800, 1200), (6, 4)),
        SheetSpec("5inch", "5 inch / 3R (3.5×5 in)", "五寸 (3R)", (1500, 1050), (5, 3.5)),
        SheetSpec("A4", "A4 (210×297 mm)", "A4 (210×297 mm)", (2480, 3508), (8.27, 11.69)),
    )
}

_SIZE_PATTERN = re.compile(r"^(\d+)\s*[x×*]\s*(\d+)$")  # matched against the stripped, lower-cased value
_HEX_PATTERN = re.compile(r"^#?([0-9a-f]{6})$")


def custom_size(width: int, height: int, dpi: int = DPI) -> SizePreset:
    """A custom size in px (printed at `dpi`), validated."""
    low, high = CUSTOM_SIDE_RANGE
    if not (low <= width <= high and low <= height <= high):
        raise IdPhotoError(400, f"custom size {width}x{height} px: each side must be {low}-{high} px")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise IdPhotoError(400, f"custom size {width}x{height} px: the aspect ratio may be at most {MAX_ASPECT:g}:1")
    return SizePreset(f"{width}x{height}", f"Custom {width}×{height} px", f"自定义 {width}×{height} px",
                      (width, height), _mm((width, height), dpi), dpi=dpi)  # fmt: skip


def custom_mm(width_mm: float, height_mm: float, dpi: int) -> SizePreset:
    """A custom size in mm at `dpi`, validated (its px as for custom_size)."""
    low, high = CUSTOM_DPI_RANGE
    if not low <= dpi <= high:
        raise IdPhotoError(400, f"dpi must be {low}-{high}, got {dpi}")
    width, height = px((width_mm, height_mm), dpi)
    size = custom_size(width, height, dpi)
    name = f"{width_mm:g}x{height_mm:g}mm"
    label_en, label_zh = f"Custom {width_mm:g}×{height_mm:g} mm at {dpi} DPI", f"自定义 {width_mm:g}×{height_mm:g} mm"
    return SizePreset(name, label_en, label_zh, size.px, (width_mm, height_mm), dpi=dpi)


def _int_param(name: str, value: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise IdPhotoError(400, f"{name} must be a whole number of pixels, got {value!r}") from None


def _mm_param(name: str, value: str) -> float:
    try:
        number = float(value.strip())
    except ValueError:
        number = float("nan")
    if not 5 <= number <= 500:
        raise IdPhotoError(400, f"{name} must be a length in mm from 5 to 500, got {value!r}")
    return number


def parse_size(name: str | None, width: str | None = None, height: str | None = None, width_mm: str | None = None,
               height_mm: str | None = None, dpi: str | None = None) -> SizePreset:  # fmt: skip
    """A preset name, 'WxH' in px, or 'custom' (or no name) with `width` and `height` in px, or with `width_mm`
    and `height_mm` (and `dpi`, default 300)."""
    valid = (f"use one of: {', '.join(SIZE_PRESETS)}, 'WxH' in px (e.g. 413x531), or size=custom with width and "
             "height (px) or width_mm and height_mm (with dpi)")  # fmt: skip
    key = (name or "").strip().lower()
    given = {k for k, v in (("width", width), ("height", height), ("width_mm", width_mm),
                            ("height_mm", height_mm), ("dpi", dpi)) if v is not None}  # fmt: skip
    if given:
        if key not in ("", "custom"):
            raise IdPhotoError(400, f"{', '.join(sorted(given))} go with size=custom, not size={name!r}")
        if given & {"width_mm", "height_mm"}:
            if given & {"width", "height"} or width_mm is None or height_mm is None:
                raise IdPhotoError(400, "a custom size in mm needs width_mm and height_mm (and no width/height)")
            dots = _int_param("dpi", dpi) if dpi is not None else DPI
            return custom_mm(_mm_param("width_mm", width_mm), _mm_param("height_mm", height_mm), dots)
        if width is None or height is None:
            raise IdPhotoError(400, "a custom size needs both width and height (px)")
        dots = _int_param("dpi", dpi) if dpi is not None else DPI
        if not CUSTOM_DPI_RANGE[0] <= dots <= CUSTOM_DPI_RANGE[1]:
            raise IdPhotoError(400, f"dpi must be {CUSTOM_DPI_RANGE[0]}-{CUSTOM_DPI_RANGE[1]}, got {dots}")
        return custom_size(_int_param("width", width), _int_param("height", height), dots)
    if key in SIZE_PRESETS:
        return SIZE_PRESETS[key]
    match = _SIZE_PATTERN.match(key)
    if match:
        return custom_size(int(match[1]), int(match[2]))
    if key == "custom":
        raise IdPhotoError(400, "size=custom needs width and height (px), or width_mm and height_mm")
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


def catalogue() -> dict[str, list[dict[str, object]]]:
    """Every size, background and print sheet, as GET /v1/id-photo/presets lists them."""
    return {
        "sizes": [p.as_json() for p in SIZE_PRESETS.values()],
        "backgrounds": [{"name": b.name, "label_en": b.label_en, "label_zh": b.label_zh,
                         "rgb": list(b.rgb) if b.rgb else None} for b in BACKGROUNDS.values()],
        "sheets": [{"name": s.name, "label_en": s.label_en, "label_zh": s.label_zh, "px": list(s.px),
                    "inches": list(s.inches)} for s in SHEETS.values()],
    }  # fmt: skip
