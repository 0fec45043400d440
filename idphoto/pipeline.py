"""ID photos end to end: options, crop, matte, background, encoding and print sheet."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from idphoto.compose import composite
from idphoto.crop import CropPlan, find_crown, plan_face_crop, plan_fit, render
from idphoto.errors import IdPhotoError
from idphoto.face import Face, FaceBox, detect_faces
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
)
CROPS = ("face", "none")
FACES = ("single", "largest")  # several faces: refuse (single), or use the largest
MAX_LEVEL_DEGREES = 15.0  # a tilted head is levelled up to this angle; beyond it the photo is refused
MIN_LEVEL_DEGREES = 0.05  # below this the photo is left as it is (no resampling for nothing)
MAX_KB_RANGE = (1, 100_000)
_BOOLS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
_FORMATS = {"jpeg": "jpeg", "jpg": "jpeg", "png": "png"}


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
    refine: bool = True  # guided-filter matte edges; False uses the model's probability as is

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
    face_box: FaceBox | None  # (x, y, w, h) in the levelled source image's pixels; None when the crop used no face
    crop: CropPlan | None  # None for size 'original'
    levelled_degrees: float  # the rotation that levelled the eye line (0 without a face crop)
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
    levelled = 0.0
    target = options.size.px
    if target is not None:
        if options.crop == "face":
            face = _the_face(image_bgr, options.face)
            levelled = face.roll_degrees
            if abs(levelled) > MAX_LEVEL_DEGREES:
                raise IdPhotoError(422, f"the head is tilted by {abs(levelled):.0f} degrees; at most "
                                   f"{MAX_LEVEL_DEGREES:.0f} can be levelled, hold the head upright")  # fmt: skip
            if abs(levelled) >= MIN_LEVEL_DEGREES:
                image_bgr, probability, face = _level(image_bgr, probability, face)
            else:
                levelled = 0.0
            face_box = face.box
            crown, chin = find_crown(probability, face.box), face.chin.y
            plan = plan_face_crop((width, height), face.box, crown, chin, target, options.size.rules, face.eye_center.y)
        else:
            plan = plan_fit((width, height), target)
        image_bgr, probability = render(image_bgr, plan), render(probability, plan)
    alpha = refine_alpha(image_bgr, probability) if options.refine else probability
    photo = composite(image_bgr, alpha, options.background)
    fmt = options.output_format
    data = encode_image(photo, fmt, options.max_kb, options.size.dpi, options.min_kb)
    sheet = encode_image(make_sheet(photo, options.sheet, options.size.dpi), fmt) if options.sheet else None
    return IdPhotoResult(
        photo=data,
        content_type=CONTENT_TYPES[fmt],
        width=photo.shape[1],
        height=photo.shape[0],
        face_box=face_box,
        crop=plan,
        levelled_degrees=levelled,
        sheet=sheet,
        image=photo,
    )


def _the_face(image_bgr: np.ndarray, which: str) -> Face:
    faces = detect_faces(image_bgr)
    if not faces:
        raise IdPhotoError(422, "no face found in the photo; retry with crop=none to keep the whole picture without"
                           " the face-aware crop")  # fmt: skip
    if len(faces) > 1 and which != "largest":
        raise IdPhotoError(422, f"{len(faces)} faces found in the photo; an ID photo shows one person (pass "
                           "face=largest to use the largest face)")  # fmt: skip
    return faces[0]


def _level(image_bgr: np.ndarray, probability: np.ndarray, face: Face) -> tuple[np.ndarray, np.ndarray, Face]:
    """Rotate the photo and its matte about the eyes' midpoint so the eye line is horizontal. The edges are
    filled from the nearest pixels of both, so a body that reaches the bottom edge stays whole."""
    height, width = probability.shape
    matrix = cv2.getRotationMatrix2D(face.eye_center, face.roll_degrees, 1.0)
    flags, border = cv2.INTER_LINEAR, cv2.BORDER_REPLICATE
    image_bgr = cv2.warpAffine(image_bgr, matrix, (width, height), flags=flags, borderMode=border)
    probability = cv2.warpAffine(probability, matrix, (width, height), flags=flags, borderMode=border)
    mesh = face.mesh @ matrix[:, :2].T + matrix[:, 2]
    cx, cy = matrix @ np.array([face.box.cx, face.box.cy, 1.0])
    box = FaceBox(round(cx - face.box.w / 2), round(cy - face.box.h / 2), face.box.w, face.box.h)
    return image_bgr, probability, Face(box, face.score, mesh)
