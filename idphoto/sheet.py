"""Print sheets: as many copies of a photo as fit, evenly spaced, with light cut guides."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from idphoto.compose import composite
from idphoto.errors import IdPhotoError
from idphoto.presets import BACKGROUNDS, SheetSpec

MIN_GAP = 20  # px between photos and at the sheet's edges (1.7 mm at 300 DPI): room to cut
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


def make_sheet(photo: np.ndarray, sheet: SheetSpec) -> np.ndarray:
    """A white BGR sheet with copies of `photo` (BGR, or BGRA which is flattened onto white)."""
    if photo.shape[2] == 4:
        photo = composite(photo[..., :3], photo[..., 3].astype(np.float32) / 255, BACKGROUNDS["white"])
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
