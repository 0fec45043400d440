"""The UI's one action without the UI: form values in, files and a bilingual status message out."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from app import outputs
from app.backend import Backend, BackendError, PhotoRequest

NO_IMAGE = "请先上传一张人像照片。 Please upload a portrait photo first."
NEED_SIZE = "自定义尺寸需要填写宽度和高度。 A custom size needs a width and a height."
NO_FACE = (
    "未检测到人脸：请换一张清晰的正面照片，或把“裁剪方式”改为“保留整张图片”。"
    " No face found: use a clear frontal portrait, or set Crop to “Keep whole picture”."
)
TOO_SMALL = (
    "图片太小，放大后会模糊：请使用更大的照片或离镜头更近的照片。"
    " The image is too small for this size: use a larger photo or one taken closer."
)
UNAVAILABLE = "无法连接到分割服务器。 Cannot reach the segmentation server."
FAILED = "无法生成证件照。 Could not make the ID photo."
_RGB = re.compile(r"rgba?\(\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)")


@dataclass(frozen=True)
class Outcome:
    """What the UI shows: the overlay and the files on success, only `message` on failure."""

    message: str
    overlay: np.ndarray | None = None
    photo: Path | None = None
    sheet: Path | None = None

    @property
    def ok(self) -> bool:
        return self.photo is not None


def colour_param(preset: str, picked: str | None) -> str:
    """The background parameter: a preset name, or the colour picker's value as '#RRGGBB' / 'r,g,b'."""
    if preset != "custom":
        return preset
    value = (picked or "").strip()
    match = _RGB.match(value)
    if match:
        return ",".join(str(round(float(c))) for c in match.groups())
    return value


def error_message(error: BackendError) -> str:
    """A bilingual explanation with the backend's own words underneath."""
    text = error.message.lower()
    if error.status == 422 and "no face" in text:
        headline = NO_FACE
    elif error.status == 422 and "too small" in text:
        headline = TOO_SMALL
    elif error.status in (503, 504):
        headline = UNAVAILABLE
    else:
        headline = FAILED
    return f"错误 Error: {headline}\n\n详情 Details: {error.message}"


def _whole(value: float | None) -> int | None:
    return None if value is None or value <= 0 else round(value)


def _positive(value: float | None) -> float | None:
    return None if value is None or value <= 0 else float(value)


def build_request(background: str, colour: str | None, size: str, width: float | None, height: float | None,
                  crop: str, fmt: str, max_kb: float | None, sheet: str | None, refine: bool,
                  largest_face: bool = False, min_kb: float | None = None, white_balance: bool = False,
                  brightness: bool = False, unit: str = "px", dpi: float | None = None) -> PhotoRequest:  # fmt: skip
    """A PhotoRequest from the form's values (empty numbers and 'none' mean not set); a custom size is in px, or
    in mm at dpi when unit is 'mm'."""
    pixels, millimetres = size == "custom" and unit != "mm", size == "custom" and unit == "mm"
    return PhotoRequest(
        background=colour_param(background, colour),
        size=size,
        width=_whole(width) if pixels else None,
        height=_whole(height) if pixels else None,
        width_mm=_positive(width) if millimetres else None,
        height_mm=_positive(height) if millimetres else None,
        dpi=_whole(dpi) if millimetres else None,
        crop=crop,
        face="largest" if largest_face else "single",
        format=fmt,
        max_kb=_whole(max_kb),
        min_kb=_whole(min_kb),
        sheet=sheet if sheet and sheet != "none" else None,
        refine=refine,
        white_balance=white_balance,
        brightness=brightness,
    )


def generate(backend: Backend, workdir: Path, image_path: str | None, request: PhotoRequest) -> Outcome:
    """Make the photo from the uploaded file's bytes (sent as they are) and save the downloads under workdir."""
    if not image_path:
        return Outcome(f"错误 Error: {NO_IMAGE}")
    in_px, in_mm = (request.width, request.height), (request.width_mm, request.height_mm)
    if request.size == "custom" and None in in_px and None in in_mm:
        return Outcome(f"错误 Error: {NEED_SIZE}")
    try:
        generated = backend.make(Path(image_path).read_bytes(), request)
    except BackendError as exc:
        return Outcome(error_message(exc))
    photo, sheet = outputs.save(generated, request, workdir)
    kb, dpi = len(generated.photo) / 1024, _dpi(generated.photo)
    message = (
        f"完成：已生成 {generated.width}×{generated.height} 像素，{dpi} DPI，{kb:.0f} KB。"
        f" Done: {generated.width}×{generated.height} px, {dpi} DPI, {kb:.0f} KB."
    )
    if sheet is not None:
        message += " 已生成排版照。 Print sheet ready."
    return Outcome(message, generated.overlay, photo, sheet)


def _dpi(photo: bytes) -> int:
    """The DPI the encoded photo carries (what it prints at)."""
    with Image.open(io.BytesIO(photo)) as image:
        return round(image.info.get("dpi", (72, 72))[0])
