"""Crop geometry (hand-computed cases), crown finding and distortion-free rendering."""

from __future__ import annotations

import numpy as np
import pytest

from idphoto.crop import (
    CropPlan,
    find_crown,
    head_placement,
    plan_face_crop,
    plan_fit,
    render,
)
from idphoto.errors import IdPhotoError
from idphoto.face import FaceBox
from idphoto.sizes import ICAO_RULES, ID_RULES

ONE_INCH = (295, 413)


def chin_below(face: FaceBox) -> float:
    """A chin a little below the face box, where the landmark model puts it on a frontal face."""
    return face.y + 1.15 * face.h


def head_numbers(plan: CropPlan, crown: float, chin: float) -> tuple[float, float]:
    return (chin - crown) / plan.height, (crown - plan.top) / plan.height


def test_ideal_crop() -> None:
    # crown 200, chin 530: head 330 -> height 330 / 0.65 = 507.692, top 200 - 0.1 * 507.692 = 149.231,
    # width 507.692 * 295 / 413 = 362.637, left 500 - 181.319 = 318.681, scale 413 / 507.692 = 0.81348.
    face = FaceBox(400, 300, 200, 200)
    plan = plan_face_crop((1000, 1200), face, 200, 530, ONE_INCH)
    assert plan.height == pytest.approx(507.6923, abs=1e-4)
    assert plan.top == pytest.approx(149.2308, abs=1e-4)
    assert plan.width == pytest.approx(362.6374, abs=1e-4)
    assert plan.left == pytest.approx(318.6813, abs=1e-4)
    assert plan.scale == pytest.approx(0.813485, abs=1e-6)
    assert plan.width / plan.height == pytest.approx(295 / 413, rel=1e-12)
    assert plan.left + plan.width / 2 == pytest.approx(face.cx)
    assert head_numbers(plan, 200, 530) == pytest.approx((0.65, 0.10))
    assert (plan.pad_top, plan.pad_right, plan.pad_bottom, plan.pad_left) == (0, 0, 0, 0)
    assert (plan.out_width, plan.out_height) == ONE_INCH


def test_icao_rules() -> None:
    plan = plan_face_crop((1000, 1200), FaceBox(400, 300, 200, 200), 200, 530, (413, 531), ICAO_RULES)
    assert head_numbers(plan, 200, 530) == pytest.approx((34 / 45, 4 / 45))  # 34 mm head, 4 mm above, of 45 mm


def test_padding_at_top_and_left_only() -> None:
    # crown 10, chin 60 + 1.15 * 160 = 244: height 234 / 0.65 = 360, top 10 - 36 = -26,
    # width 360 * 295 / 413 = 257.14, left 100 - 128.57 = -28.57; scale 413 / 360 = 1.1472
    # -> pad_top ceil(26 * 1.1472) = 30, pad_left ceil(28.57 * 1.1472) = 33.
    face = FaceBox(20, 60, 160, 160)
    plan = plan_face_crop((600, 800), face, 10, chin_below(face), ONE_INCH)
    assert (plan.top, plan.height) == pytest.approx((-26, 360))
    assert (plan.pad_top, plan.pad_right, plan.pad_bottom, plan.pad_left) == (30, 0, 0, 33)


def test_bottom_edge_moves_head_rules_within_bands() -> None:
    # crown 60, chin 235 (head 175), image 300 high: the ideal crop (height 269.2 from top 33.1) ends at 302.3.
    # room = 240 / 175 = 1.37143; t = (0.9 - 0.65 * room) / (0.02 + 0.05 * room) = 0.096774
    # -> head ratio 0.654839, crown margin 0.101935, height 175 / 0.654839 = 267.24 ending exactly at 300.
    plan = plan_face_crop((600, 300), FaceBox(250, 120, 100, 100), 60, 235, ONE_INCH)
    ratio, margin = head_numbers(plan, 60, 235)
    assert (ratio, margin) == pytest.approx((0.654839, 0.101935), abs=1e-6)
    assert plan.top + plan.height == pytest.approx(300, abs=1e-9)
    assert plan.pad_bottom == 0
    low, high = ID_RULES.head_band
    assert low <= ratio <= high
    low, high = ID_RULES.margin_band
    assert low <= margin <= high


def test_chin_near_bottom_is_best_effort_without_bottom_padding() -> None:
    plan = plan_face_crop((600, 240), FaceBox(250, 120, 100, 100), 60, 235, ONE_INCH)
    ratio, margin = head_numbers(plan, 60, 235)
    assert plan.top + plan.height == pytest.approx(240, abs=1e-9)
    assert plan.pad_bottom == 0
    assert ratio > ID_RULES.head_band[1] and margin > ID_RULES.margin_band[1]  # past both bands, together
    assert (ratio - 0.65) / (margin - 0.10) == pytest.approx(0.05 / 0.02)


def test_head_placement_targets_when_room() -> None:
    assert head_placement(100, 300, 2000, ID_RULES) == (0.65, 0.10)
    with pytest.raises(ValueError, match="below the crown"):
        head_placement(300, 300, 2000, ID_RULES)


def test_too_small_is_422_naming_sizes() -> None:
    # head 99 -> crop 152 x 109 px, but 295 x 413 needs at least 148 x 207
    face = FaceBox(70, 60, 60, 60)
    with pytest.raises(IdPhotoError, match=r"image too small.*109x152 px.*295x413 px.*148x207") as caught:
        plan_face_crop((200, 260), face, 30, chin_below(face), ONE_INCH)
    assert caught.value.status == 422


def test_fit_wide_image_pads_top_only() -> None:
    # 800 x 400 into 295 x 413: height 800 * 413 / 295 = 1120, top 400 - 1120 = -720, left 0
    plan = plan_fit((800, 400), ONE_INCH)
    assert (plan.left, plan.top, plan.width, plan.height) == pytest.approx((0, -720, 800, 1120))
    assert (plan.pad_top, plan.pad_right, plan.pad_bottom, plan.pad_left) == (266, 0, 0, 0)  # ceil(720 * 413 / 1120)


def test_fit_tall_image_pads_sides() -> None:
    plan = plan_fit((200, 1000), ONE_INCH)  # width 1000 * 295 / 413 = 714.29, left -257.14
    assert (plan.top, plan.height, plan.left) == pytest.approx((0, 1000, -257.1429), abs=1e-4)
    assert plan.pad_left == plan.pad_right == 107  # ceil(257.14 * 0.413)
    assert plan.pad_top == plan.pad_bottom == 0


def test_find_crown_walks_up_the_head() -> None:
    prob = np.zeros((300, 200), np.float32)
    prob[40:, 60:140] = 1.0  # head from row 40 down
    prob[5:10, 90:110] = 1.0  # a detached blob above (not head)
    face = FaceBox(60, 100, 80, 80)
    assert find_crown(prob, face) == 40


def test_find_crown_falls_back_to_estimate() -> None:
    face = FaceBox(60, 100, 80, 80)
    assert find_crown(np.zeros((300, 200), np.float32), face) == pytest.approx(100 - 0.45 * 80)
    head_at_edge = np.ones((300, 200), np.float32)  # the head touches the top edge: the crown is above it
    assert find_crown(head_at_edge, FaceBox(60, 40, 80, 80)) == pytest.approx(min(0, 40 - 0.45 * 80))
    assert find_crown(head_at_edge, FaceBox(60, 20, 80, 80)) == pytest.approx(20 - 0.45 * 80)


@pytest.mark.parametrize("size", [(600, 800), (200, 280)], ids=["downscale", "upscale"])
def test_render_scales_uniformly(size: tuple[int, int]) -> None:
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    plan = plan_fit(size, ONE_INCH)
    out_x, out_y = render(xs, plan), render(ys, plan)
    assert out_x.shape == (413, 295)
    rows, cols = slice(plan.pad_top + 2, 411), slice(2, 293)
    step = 1 / plan.scale  # source pixels per output pixel, along both axes
    u, v = np.meshgrid(np.arange(295), np.arange(413))
    ideal_x = plan.left + (u + 0.5) * step - 0.5  # pixel centres
    ideal_y = plan.top + (v + 0.5) * step - 0.5
    assert np.abs(out_x - ideal_x)[rows, cols].max() < 0.25
    assert np.abs(out_y - ideal_y)[rows, cols].max() < 0.25


def test_render_pads_with_zero_but_never_fades_the_bottom_row() -> None:
    ones = np.ones((400, 300), np.float32)
    plan = plan_fit((300, 400), (400, 400))  # upscale x1, padding left and right of 50 px
    out = render(ones, plan)
    assert np.all(out[:, :49] == 0) and np.all(out[:, 351:] == 0)
    assert np.all(out[:, 51:349] == 1)
    assert np.all(out[-1, 51:349] == 1)
    image = np.full((400, 300, 3), 7, np.uint8)
    assert render(image, plan).dtype == np.uint8
