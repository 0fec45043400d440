"""ID photos end to end: options, crop, matte, background, encoding and print sheet."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from idphoto.compose import composite
from idphoto.crop import CropPlan
from idphoto.errors import IdPhotoError
from idphoto.face import FaceBox
from idphoto.foreground import estimate_foreground
from idphoto.framing import FACES, Framing, frame_face, frame_whole
from idphoto.matting import refine_alpha
from idphoto.output import CONTENT_TYPES, encode_image
from idphoto.presets import (
    BACKGROUNDS,
    SIZE_PRESETS,
    Background,
    SheetSpec,
    SizePreset,
    parse_background,
    parse_sheet,
    parse_size,
)
from idphoto.sheet import make_sheet
from idphoto.tone import ToneCorrection, correct

PARAMS = (
    "background",
    "size",
    "width",
    "height",
    "width_mm",
    "height_mm",
    "dpi",
    "crop",
    "face",
    "format",
    "max_kb",
    "min_kb",
    "sheet",
    "refine",
    "white_balance",
    "brightness",
)
CROPS = ("face", "none")
MAX_KB_RANGE = (1, 100_000)
_BOOLS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
_FORMATS = {"jpeg": "jpeg", "jpg": "jpeg", "png": "png"}
_SWITCHES = ("refine", "white_balance", "brightness")


@dataclass(frozen=True)
class IdPhotoOptions:
    """What to make. `format` None means PNG for a transparent background, JPEG otherwise."""

    background: Background = BACKGROUNDS["white"]
    size: SizePreset = SIZE_PRESETS["1inch"]
    crop: str = "face"  # 'face': head placed by ID rules; 'none': the whole picture fitted in
    face: str = "single"  # with crop=face: 'single' refuses a photo with several faces, 'largest' uses the largest
    format: str | None = None
    max_kb: int | None = None  # limit for the photo file (KiB)
    min_kb: int | None = None  # floor for the photo file (KiB), as upload portals set
    sheet: SheetSpec | None = None
    refine: bool = True  # matte edges refined and decontaminated; False uses the model's probability as is
    white_balance: bool = False  # neutralise the light's colour cast on the person
    brightness: bool = False  # correct the person's exposure from the face's highlights

    def __post_init__(self) -> None:
        if self.crop not in CROPS:
            raise IdPhotoError(400, f"unknown crop {self.crop!r}; use one of: {', '.join(CROPS)}")
        if self.face not in FACES:
            raise IdPhotoError(400, f"unknown face {self.face!r}; use one of: {', '.join(FACES)}")
        if self.format is not None and self.format not in CONTENT_TYPES:
            raise IdPhotoError(400, f"unknown format {self.format!r}; use one of: jpeg, png")
        allowed = self.size.backgrounds
        if allowed is not None and self.background.name not in allowed:
            raise IdPhotoError(400, f"{self.size.label_en} photos need a {' or '.join(allowed)} background, not "
                               f"{self.background.name}")  # fmt: skip
        if self.background.rgb is None and self.format == "jpeg":
            raise IdPhotoError(400, "a transparent background needs format=png (JPEG has no transparency)")
        low, high = MAX_KB_RANGE
        for name, value in (("max_kb", self.max_kb), ("min_kb", self.min_kb)):
            if value is not None and not low <= value <= high:
                raise IdPhotoError(400, f"{name} must be {low}-{high}, got {value}")
        if self.min_kb is not None and self.max_kb is not None and self.min_kb > self.max_kb:
            raise IdPhotoError(400, f"min_kb={self.min_kb} is above max_kb={self.max_kb}")

    @property
    def output_format(self) -> str:
        return self.format or ("png" if self.background.rgb is None else "jpeg")

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> IdPhotoOptions:
        """Options from query-string style parameters (empty means default); IdPhotoError(400) names valid values."""
        unknown = sorted(set(params) - set(PARAMS))
        if unknown:
            raise IdPhotoError(400, f"unknown parameter(s) {', '.join(unknown)}; valid: {', '.join(PARAMS)}")
        values = {k: v.strip() for k, v in params.items() if v.strip()}
        default = cls()
        sized = {"size", "width", "height", "width_mm", "height_mm", "dpi"} & set(values)
        sheet = values.get("sheet", "none")
        size = (parse_size(values.get("size"), values.get("width"), values.get("height"), values.get("width_mm"),
                           values.get("height_mm"), values.get("dpi")) if sized else default.size)  # fmt: skip
        if "background" in values:
            background = parse_background(values["background"])
        else:  # the document's own first background (a UK passport's is light grey), else white
            background = BACKGROUNDS[size.backgrounds[0]] if size.backgrounds else default.background
        return cls(
            background=background,
            size=size,
            crop=values.get("crop", default.crop).lower(),
            face=values.get("face", default.face).lower(),
            format=_parse_format(values["format"]) if "format" in values else default.format,
            max_kb=_parse_int("max_kb", values["max_kb"]) if "max_kb" in values else default.max_kb,
            min_kb=_parse_int("min_kb", values["min_kb"]) if "min_kb" in values else default.min_kb,
            sheet=None if sheet.lower() == "none" else parse_sheet(sheet),
            **{name: _parse_bool(name, values[name]) for name in _SWITCHES if name in values},
        )


def _parse_format(value: str) -> str:
    if value.lower() not in _FORMATS:
        raise IdPhotoError(400, f"unknown format {value!r}; use one of: {', '.join(_FORMATS)}")
    return _FORMATS[value.lower()]


def _parse_int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise IdPhotoError(400, f"{name} must be a whole number, got {value!r}") from None


def _parse_bool(name: str, value: str) -> bool:
    if value.lower() not in _BOOLS:
        raise IdPhotoError(400, f"{name} must be true or false, got {value!r}")
    return _BOOLS[value.lower()]


@dataclass(frozen=True)
class IdPhotoResult:
    """The encoded photo (and sheet, same format), with what was found and the composited pixels."""

    photo: bytes
    content_type: str
    width: int
    height: int
    framing: Framing | None  # None for size 'original'; applies to any array of the source's size
    tone: ToneCorrection  # what white_balance and brightness applied (neutral when off)
    sheet: bytes | None
    image: np.ndarray  # the composited photo: BGR, or BGRA for a transparent background

    @property
    def face_box(self) -> FaceBox | None:
        """(x, y, w, h) in the levelled source image's pixels; None when the crop used no face."""
        return self.framing.face_box if self.framing else None

    @property
    def crop(self) -> CropPlan | None:
        return self.framing.plan if self.framing else None

    @property
    def levelled_degrees(self) -> float:
        """The rotation that levelled the eye line (0 without a face crop)."""
        return self.framing.levelled_degrees if self.framing else 0.0


def make_id_photo(image_bgr: np.ndarray, probability: np.ndarray, options: IdPhotoOptions) -> IdPhotoResult:
    """Make an ID photo from a BGR uint8 image and the person probability map at the image's size."""
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
        raise IdPhotoError(400, f"expected a colour image, got an array of shape {image_bgr.shape}")
    if probability.shape != image_bgr.shape[:2]:
        raise ValueError(f"probability {probability.shape} does not match the image {image_bgr.shape[:2]}")
    probability = probability.astype(np.float32, copy=False)
    framing: Framing | None = None
    if options.size.px is not None:
        if options.crop == "face":
            framing = frame_face(image_bgr, probability, options.size, options.face)
        else:
            framing = frame_whole((probability.shape[1], probability.shape[0]), options.size)
        image_bgr, probability = framing.apply(image_bgr), framing.apply(probability)
    if options.refine:
        alpha = refine_alpha(image_bgr, probability)
        colours = estimate_foreground(image_bgr, alpha)
    else:
        alpha, colours = probability, image_bgr
    tone = ToneCorrection()
    if options.white_balance or options.brightness:
        face = framing.face_in_output() if framing else None
        colours, tone = correct(colours, image_bgr, alpha, face, options.white_balance, options.brightness)
    photo = composite(colours, alpha, options.background)
    fmt = options.output_format
    data = encode_image(photo, fmt, options.max_kb, options.size.dpi, options.min_kb)
    sheet = encode_image(make_sheet(photo, options.sheet, options.size.dpi), fmt) if options.sheet else None
    return IdPhotoResult(
        photo=data,
        content_type=CONTENT_TYPES[fmt],
        width=photo.shape[1],
        height=photo.shape[0],
        framing=framing,
        tone=tone,
        sheet=sheet,
        image=photo,
    )
