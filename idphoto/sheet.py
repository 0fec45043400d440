"""Print sheets: as many copies of a photo as fit, evenly spaced, with light cut guides."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from idphoto.compose import composite
from idphoto.errors import IdPhotoError
from idphoto.presets import BACKGROUNDS, SheetSpec
from idphoto.sizes import DPI, MM_PER_INCH

MIN_GAP_MM = 1.7  # between photos and at the sheet's edges: room to cut (spread evenly, so usually more)
MIN_GAP = round(MIN_GAP_MM / MM_PER_INCH * DPI)  # px
GUIDE_BGR = (200, 200, 200)  # light grey cut lines, one px outside each photo edge


@dataclass(frozen=True)
class SheetLayout:
    """Photo positions (top-left, px) on a sheet; the gaps are even along each axis."""

    columns: int
    rows: int
    xs: tuple[int, ...]
    ys: tuple[int, ...]

    @property
    def count(self) -> int:
        return self.columns * self.rows


def _positions(sheet_side: int, photo_side: int) -> tuple[int, ...]:
    n = (sheet_side - MIN_GAP) // (photo_side + MIN_GAP)
    gap = (sheet_side - n * photo_side) / (n + 1)
    return tuple(round(gap + i * (photo_side + gap)) for i in range(n))


def layout_sheet(photo_size: tuple[int, int], sheet: SheetSpec) -> SheetLayout:
    """Where copies of a (width, height) photo go on `sheet`; IdPhotoError(400) if none fits."""
    xs, ys = _positions(sheet.px[0], photo_size[0]), _positions(sheet.px[1], photo_size[1])
    if not xs or not ys:
        raise IdPhotoError(
            400,
            f"a {photo_size[0]}x{photo_size[1]} px photo does not fit on a {sheet.name} sheet"
            f" ({sheet.px[0]}x{sheet.px[1]} px); choose a smaller size",
        )
    return SheetLayout(len(xs), len(ys), xs, ys)


def make_sheet(photo: np.ndarray, sheet: SheetSpec, dpi: int = DPI) -> np.ndarray:
    """A white BGR sheet with copies of `photo` (BGR, or BGRA which is flattened onto white), printed at its
    size in mm: a photo made at another `dpi` is resampled to the sheet's 300."""
    if photo.shape[2] == 4:
        photo = composite(photo[..., :3], photo[..., 3].astype(np.float32) / 255, BACKGROUNDS["white"])
    if dpi != DPI:
        size = (round(photo.shape[1] * DPI / dpi), round(photo.shape[0] * DPI / dpi))
        photo = cv2.resize(photo, size, interpolation=cv2.INTER_AREA if dpi > DPI else cv2.INTER_CUBIC)
    height, width = photo.shape[:2]
    layout = layout_sheet((width, height), sheet)
    canvas = np.full((sheet.px[1], sheet.px[0], 3), 255, dtype=np.uint8)
    for x in layout.xs:  # full-length lines first: the photos cover them, leaving marks in the gaps
        canvas[:, [x - 1, x + width]] = GUIDE_BGR
    for y in layout.ys:
        canvas[[y - 1, y + height], :] = GUIDE_BGR
    for y in layout.ys:
        for x in layout.xs:
            canvas[y : y + height, x : x + width] = photo
    return canvas
