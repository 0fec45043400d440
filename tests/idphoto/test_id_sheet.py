"""Print sheets: copy counts, even gaps, cut guides."""

from __future__ import annotations

import numpy as np
import pytest

from idphoto.errors import IdPhotoError
from idphoto.presets import SHEETS
from idphoto.sheet import GUIDE_BGR, MIN_GAP, MIN_GAP_MM, layout_sheet, make_sheet


def test_one_inch_on_4r() -> None:
    # 1800 wide: 5 x 295 + 6 x 20 = 1595 fits, 6 copies need 1910; 1200 high: 2 x 413 + 3 x 20 fits, 3 do not.
    layout = layout_sheet((295, 413), SHEETS["4R"])
    assert (layout.columns, layout.rows, layout.count) == (5, 2, 10)
    # even gaps: (1800 - 5 x 295) / 6 = 54.17, (1200 - 2 x 413) / 3 = 124.67
    assert layout.xs == (54, 403, 752, 1102, 1451)
    assert layout.ys == (125, 662)


@pytest.mark.parametrize(
    ("photo", "sheet", "count"),
    [((295, 413), "5inch", 8), ((413, 626), "4R", 4), ((413, 531), "4R", 8), ((390, 567), "4R", 8)],
)
def test_counts(photo: tuple[int, int], sheet: str, count: int) -> None:
    assert layout_sheet(photo, SHEETS[sheet]).count == count


def test_too_large_a_photo() -> None:
    with pytest.raises(IdPhotoError, match="does not fit on a 5inch sheet") as caught:
        layout_sheet((1200, 1600), SHEETS["5inch"])
    assert caught.value.status == 400


def test_sheet_pixels() -> None:
    photo = np.full((413, 295, 3), 77, np.uint8)
    sheet = make_sheet(photo, SHEETS["4R"])
    assert sheet.shape == (1200, 1800, 3) and sheet.dtype == np.uint8
    layout = layout_sheet((295, 413), SHEETS["4R"])
    for x in layout.xs:
        for y in layout.ys:
            assert np.all(sheet[y : y + 413, x : x + 295] == 77)
    x0, y0 = layout.xs[0], layout.ys[0]
    assert sheet[10, x0 - 1].tolist() == list(GUIDE_BGR)  # guide in the top margin, along the left cut
    assert sheet[10, x0 + 295].tolist() == list(GUIDE_BGR)  # ... and the right cut
    assert sheet[y0 - 1, 10].tolist() == list(GUIDE_BGR)  # guide in the left margin, along the top cut
    assert sheet[10, 10].tolist() == [255, 255, 255]  # white elsewhere
    assert (sheet == 77).all(axis=2).sum() == 10 * 295 * 413  # exactly ten copies


def test_transparent_photo_is_flattened_on_white() -> None:
    photo = np.zeros((413, 295, 4), np.uint8)  # fully transparent
    sheet = make_sheet(photo, SHEETS["5inch"])
    assert sheet.shape == (1050, 1500, 3)
    layout = layout_sheet((295, 413), SHEETS["5inch"])
    assert np.all(sheet[layout.ys[0] : layout.ys[0] + 413, layout.xs[0] : layout.xs[0] + 295] == 255)


def test_a4_takes_thirty_passport_photos_and_photos_print_at_their_size_in_mm() -> None:
    layout = layout_sheet((413, 531), SHEETS["A4"])  # 35x45 mm at 300 DPI on 210x297 mm
    assert (layout.columns, layout.rows) == (5, 6)
    gaps = np.diff(layout.xs) - 413
    assert gaps.min() >= MIN_GAP and round(MIN_GAP / 300 * 25.4, 1) == MIN_GAP_MM
    assert layout_sheet((413, 531), SHEETS["4R"]).count >= 4
    # a 350 DPI photo (China's ID-card size, 26x32 mm) prints at 26x32 mm on the 300 DPI sheet: 307x378 px
    card = np.full((441, 358, 3), 90, np.uint8)
    sheet = make_sheet(card, SHEETS["4R"], dpi=350)
    copies = layout_sheet((307, 378), SHEETS["4R"])
    x, y = copies.xs[0], copies.ys[0]
    assert (sheet[y : y + 378, x : x + 307] == 90).all() and sheet[y + 378 + 1, x + 5].tolist() != [90, 90, 90]
