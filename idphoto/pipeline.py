"""ID photos end to end: options, crop, matte, background, encoding and print sheet."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from idphoto.compose import composite
from idphoto.crop import CropPlan, estimate_chin, find_crown, plan_face_crop, plan_fit, render
from idphoto.errors import IdPhotoError
from idphoto.face import FaceBox, detect_face
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

PARAMS = ("background", "size", "width", "height", "crop", "format", "max_kb", "sheet", "refine")
CROPS = ("face", "none")
MAX_KB_RANGE = (1, 100_000)
_BOOLS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
_FORMATS = {"jpeg": "jpeg", "jpg": "jpeg", "png": "png"}


@dataclass(frozen=True)
class IdPhotoOptions:
    """What to make. `format` None means PNG for a transparent background, JPEG otherwise."""

    background: Background = BACKGROUNDS["white"]
    size: SizePreset = SIZE_PRESETS["1inch"]
    crop: str = "face"  # 'face': head placed by ID rules; 'none': the whole picture fitted in
    format: str | None = None
    max_kb: int | None = None  # limit for the photo file (KiB)
    sheet: SheetSpec | None = None
    refine: bool = True  # guided-filter matte edges; False uses the model's probability as is

    def __post_init__(self) -> None:
        if self.crop not in CROPS:
            raise IdPhotoError(400, f"unknown crop {self.crop!r}; use one of: {', '.join(CROPS)}")
        if self.format is not None and self.format not in CONTENT_TYPES:
            raise IdPhotoError(400, f"unknown format {self.format!r}; use one of: jpeg, png")
        if self.background.rgb is None and self.format == "jpeg":
            raise IdPhotoError(400, "a transparent background needs format=png (JPEG has no transparency)")
        low, high = MAX_KB_RANGE
        if self.max_kb is not None and not low <= self.max_kb <= high:
            raise IdPhotoError(400, f"max_kb must be {low}-{high}, got {self.max_kb}")

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
        sized = {"size", "width", "height"} & set(values)
        sheet = values.get("sheet", "none")
        return cls(
            background=parse_background(values["background"]) if "background" in values else default.background,
            size=parse_size(values.get("size"), values.get("width"), values.get("height")) if sized else default.size,
            crop=values.get("crop", default.crop).lower(),
            format=_parse_format(values["format"]) if "format" in values else default.format,
            max_kb=_parse_int("max_kb", values["max_kb"]) if "max_kb" in values else default.max_kb,
            sheet=None if sheet.lower() == "none" else parse_sheet(sheet),
            refine=_parse_bool("refine", values["refine"]) if "refine" in values else default.refine,
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
    face_box: FaceBox | None  # (x, y, w, h) in the source image's pixels; None when the crop used no face
    crop: CropPlan | None  # None for size 'original'
    sheet: bytes | None
    image: np.ndarray  # the composited photo: BGR, or BGRA for a transparent background


def make_id_photo(image_bgr: np.ndarray, probability: np.ndarray, options: IdPhotoOptions) -> IdPhotoResult:
    """Make an ID photo from a BGR uint8 image and the person probability map at the image's size."""
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
        raise IdPhotoError(400, f"expected a colour image, got an array of shape {image_bgr.shape}")
    if probability.shape != image_bgr.shape[:2]:
        raise ValueError(f"probability {probability.shape} does not match the image {image_bgr.shape[:2]}")
    probability = probability.astype(np.float32, copy=False)
    height, width = probability.shape
    face_box: FaceBox | None = None
    plan: CropPlan | None = None
    target = options.size.px
    if target is not None:
        if options.crop == "face":
            face_box = detect_face(image_bgr)
            if face_box is None:
                raise IdPhotoError(
                    422,
                    "no face found in the photo; retry with crop=none to keep the whole picture without the"
                    " face-aware crop",
                )
            crown, chin = find_crown(probability, face_box), estimate_chin(face_box)
            plan = plan_face_crop((width, height), face_box, crown, chin, target, options.size.rules)
        else:
            plan = plan_fit((width, height), target)
        image_bgr, probability = render(image_bgr, plan), render(probability, plan)
    alpha = refine_alpha(image_bgr, probability) if options.refine else probability
    photo = composite(image_bgr, alpha, options.background)
    fmt = options.output_format
    data = encode_image(photo, fmt, options.max_kb)
    sheet = encode_image(make_sheet(photo, options.sheet), fmt) if options.sheet is not None else None
    return IdPhotoResult(
        photo=data,
        content_type=CONTENT_TYPES[fmt],
        width=photo.shape[1],
        height=photo.shape[0],
        face_box=face_box,
        crop=plan,
        sheet=sheet,
        image=photo,
    )
