"""segcore.transforms: PaddleSeg deploy-time transforms on tiny hand-checked images."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from segcore.transforms import (
    InvalidImage,
    LimitLong,
    Normalize,
    Padding,
    Resize,
    ResizeByLong,
    ResizeByShort,
    Sample,
    parse_transform,
)


def _row(values: list[int]) -> Sample:
    """A 1-pixel-high, single-channel uint8 image."""
    return Sample(np.array([values], dtype=np.uint8))


def _blank(width: int, height: int) -> Sample:
    return Sample(np.zeros((height, width, 3), dtype=np.uint8))


def _wh(sample: Sample) -> tuple[int, int]:
    h, w = sample.image.shape[:2]
    return w, h


# --- Resize ---------------------------------------------------------------------------------------------


def test_resize_linear_half_pixel_row():
    # Half-pixel centres, scale = 2/4 = 0.5: src x = (dst + 0.5) * 0.5 - 0.5
    # dst 0 -> -0.25 (clamped to 0) -> 0; dst 1 -> 0.25 -> 0 + 0.25*100 = 25;
    # dst 2 -> 0.75 -> 75; dst 3 -> 1.25 (clamped to 1) -> 100.
    out = Resize(target_size=[4, 1])(_row([0, 100]))
    assert out.image.tolist() == [[0, 25, 75, 100]]
    assert out.image.dtype == np.uint8


def test_resize_nearest_duplicates_pixels():
    # NEAREST, scale 0.5: src x = floor(dst * 0.5) -> 0, 0, 1, 1.
    out = Resize(target_size=[4, 1], interp="NEAREST")(_row([0, 100]))
    assert out.image.tolist() == [[0, 0, 100, 100]]


def test_resize_pixel_center_corner_uses_warp_affine_with_zero_border():
    # warpAffine with x' = x * 4/2: src x = dst * 2/4 = dst / 2 -> 0, 0.5, 1, 1.5.
    # 0 -> 0; 0.5 -> (0+100)/2 = 50; 1 -> 100; 1.5 -> (100 + border 0)/2 = 50.
    out = Resize(target_size=[4, 1], pixel_center="corner")(_row([0, 100]))
    assert out.image.tolist() == [[0, 50, 100, 50]]
    assert out.trans_info == [("resize", (1, 2))]


def test_resize_records_input_size_as_h_w():
    sample = _blank(width=5, height=3)
    out = Resize(target_size=[8, 6])(sample)
    # target_size is [w, h] -> output 8 wide, 6 high; trans_info keeps the input (h=3, w=5).
    assert _wh(out) == (8, 6)
    assert out.trans_info == [("resize", (3, 5))]


def test_resize_same_size_still_records():
    out = Resize(target_size=[5, 3])(_blank(5, 3))
    assert _wh(out) == (5, 3)
    assert out.trans_info == [("resize", (3, 5))]


def test_resize_int_target_is_square():
    assert Resize(target_size=7).target_size == (7, 7)


def test_resize_keep_ratio_landscape():
    # 200 x 100 (w x h) into [512, 512]: scale = min(512/200, 512/100) = min(2.56, 5.12) = 2.56
    # -> 200*2.56 = 512 wide, 100*2.56 = 256 high.
    t = Resize(target_size=[512, 512], keep_ratio=True)
    assert t.output_size(100, 200) == (512, 256)
    out = t(_blank(200, 100))
    assert _wh(out) == (512, 256)
    assert out.trans_info == [("resize", (100, 200))]


def test_resize_keep_ratio_portrait():
    # 100 x 200 (w x h): same scale 2.56 -> 256 wide, 512 high.
    assert Resize(target_size=[512, 512], keep_ratio=True).output_size(200, 100) == (256, 512)


def test_resize_size_divisor_rounds_up():
    # [100, 50] with divisor 32: ceil(100/32)*32 = 4*32 = 128; ceil(50/32)*32 = 2*32 = 64.
    t = Resize(target_size=[100, 50], size_divisor=32)
    assert t.output_size(10, 10) == (128, 64)
    assert _wh(t(_blank(10, 10))) == (128, 64)
    # Already a multiple: [64, 32] stays [64, 32].
    assert Resize(target_size=[64, 32], size_divisor=32).output_size(10, 10) == (64, 32)


def test_resize_keep_ratio_then_size_divisor():
    # 200x100 into [512,512] keep_ratio -> 512x256; divisor 100 -> ceil(5.12)*100 = 600, ceil(2.56)*100 = 300.
    t = Resize(target_size=[512, 512], keep_ratio=True, size_divisor=100)
    assert t.output_size(100, 200) == (600, 300)


@pytest.mark.parametrize("bad", [0, -3, [0, 5], [5], [1, 2, 3], "512"])
def test_resize_bad_target_size_rejected(bad):
    with pytest.raises(ValidationError, match=r"Resize\.target_size must be a positive int"):
        Resize(target_size=bad)


@pytest.mark.parametrize("bad", [0, -1])
def test_padding_non_positive_target_size_rejected(bad):
    # Regression: a non-positive int used to be accepted as (bad, bad) and make every image "too large".
    with pytest.raises(ValidationError, match=r"Padding\.target_size must be a positive int"):
        Padding(target_size=bad)


def test_resize_random_interp_rejected_with_reason():
    with pytest.raises(ValueError, match="RANDOM"):
        Resize(interp="RANDOM")
    with pytest.raises(ValueError, match="interp must be one of"):
        ResizeByShort(short_size=10, interp="BICUBIC")


def test_resize_extra_key_forbidden():
    with pytest.raises(ValidationError, match="keepratio"):
        Resize(target_size=[4, 4], keepratio=True)


# --- ResizeByShort / ResizeByLong / LimitLong ------------------------------------------------------------


def test_resize_by_short():
    # 300 x 200 (w x h), short side 200 -> 100: scale 0.5 -> 150 x 100.
    out = ResizeByShort(short_size=100)(_blank(300, 200))
    assert _wh(out) == (150, 100)
    assert out.trans_info == [("resize", (200, 300))]


def test_resize_by_short_max_size_caps_long_side():
    # scale 0.5 would make the long side 150 > 120 -> scale = 120/300 = 0.4 -> 120 x 80.
    out = ResizeByShort(short_size=100, max_size=120)(_blank(300, 200))
    assert _wh(out) == (120, 80)


def test_resize_by_short_is_stateless():
    # PaddleSeg lowers short_size permanently after a capped image; ours must not.
    t = ResizeByShort(short_size=100, max_size=120)
    assert _wh(t(_blank(300, 200))) == (120, 80)
    # A square 50x50 image: scale 100/50 = 2 -> 100x100 (long side 100 <= 120), not 80x80.
    assert _wh(t(_blank(50, 50))) == (100, 100)


def test_resize_by_short_portrait_and_zero_rejected():
    # 200 x 300 (w x h), short side is the width 200 -> scale 0.5 -> 100 x 150.
    assert _wh(ResizeByShort(short_size=100)(_blank(200, 300))) == (100, 150)
    with pytest.raises(ValidationError):
        ResizeByShort(short_size=0)


def test_resize_by_long():
    # 300 x 200, long side 300 -> 150: scale 0.5 -> 150 x 100.
    out = ResizeByLong(long_size=150)(_blank(300, 200))
    assert _wh(out) == (150, 100)
    assert out.trans_info == [("resize", (200, 300))]
    # 100 x 400 (w x h), long 400 -> 200: scale 0.5 -> 50 x 200.
    assert _wh(ResizeByLong(long_size=200)(_blank(100, 400))) == (50, 200)


def test_limit_long_scales_down_to_max():
    # long side 300 > 150 -> scale 0.5 -> 150 x 100.
    out = LimitLong(max_long=150)(_blank(300, 200))
    assert _wh(out) == (150, 100)
    assert out.trans_info == [("resize", (200, 300))]


def test_limit_long_scales_up_to_min():
    # long side 300 < 600 -> scale 2 -> 600 x 400.
    out = LimitLong(min_long=600)(_blank(300, 200))
    assert _wh(out) == (600, 400)
    assert out.trans_info == [("resize", (200, 300))]


def test_limit_long_unchanged_records_nothing():
    # long side 300 within [100, 400] -> untouched, no trans_info entry.
    sample = _blank(300, 200)
    before = sample.image
    out = LimitLong(max_long=400, min_long=100)(sample)
    assert out.image is before
    assert out.trans_info == []
    # No limits at all -> also unchanged.
    assert LimitLong()(_blank(3, 2)).trans_info == []


# --- Padding ----------------------------------------------------------------------------------------------


def test_padding_bottom_right_with_127_5():
    sample = Sample(np.full((1, 2, 3), 7, dtype=np.float32))  # the preprocessor's images are float32
    out = Padding(target_size=[3, 2])(sample)
    # 1x2 (h x w) padded to 2 high, 3 wide: original at top-left, 127.5 on the right column and bottom row.
    assert out.image.dtype == np.float32
    assert out.image.shape == (2, 3, 3)
    expected = np.array([[7, 7, 127.5], [127.5, 127.5, 127.5]], dtype=np.float32)
    for c in range(3):
        np.testing.assert_array_equal(out.image[:, :, c], expected)
    assert out.trans_info == [("padding", (1, 2))]


def test_padding_integer_value_keeps_uint8():
    out = Padding(target_size=[2, 2], im_padding_value=0)(Sample(np.full((1, 1, 3), 9, dtype=np.uint8)))
    assert out.image.dtype == np.uint8
    assert out.image[:, :, 0].tolist() == [[9, 0], [0, 0]]


def test_padding_per_channel_value():
    out = Padding(target_size=[2, 1], im_padding_value=[1, 2, 3])(Sample(np.zeros((1, 1, 3), dtype=np.uint8)))
    assert out.image[0, 1].tolist() == [1, 2, 3]
    assert out.image[0, 0].tolist() == [0, 0, 0]


def test_padding_exact_size_is_noop_but_recorded():
    image = np.full((2, 3, 3), 5, dtype=np.uint8)
    out = Padding(target_size=[3, 2])(Sample(image))
    assert out.image is image
    assert out.image.dtype == np.uint8
    assert out.trans_info == [("padding", (2, 3))]


@pytest.mark.parametrize(("w", "h"), [(4, 2), (3, 3)])
def test_padding_larger_image_is_invalid(w, h):
    with pytest.raises(InvalidImage, match=f"{w}x{h}.*3x2"):
        Padding(target_size=[3, 2])(_blank(w, h))
    assert issubclass(InvalidImage, ValueError)


# --- Normalize --------------------------------------------------------------------------------------------


def test_normalize_defaults():
    # (x/255 - 0.5) / 0.5: 255 -> 1.0, 0 -> -1.0, 51 -> (0.2 - 0.5)/0.5 = -0.6.
    image = np.array([[[255, 0, 51]]], dtype=np.uint8)
    out = Normalize()(Sample(image))
    assert out.image.dtype == np.float32
    np.testing.assert_allclose(out.image[0, 0], [1.0, -1.0, -0.6], rtol=0, atol=1e-6)
    assert out.trans_info == []


def test_normalize_custom_mean_std_per_channel():
    # 51/255 = 0.2 in every channel; mean (0, 0.5, 1), std (1, 0.5, 0.25):
    # c0: (0.2 - 0)/1 = 0.2; c1: (0.2 - 0.5)/0.5 = -0.6; c2: (0.2 - 1)/0.25 = -3.2.
    image = np.full((1, 2, 3), 51, dtype=np.uint8)
    out = Normalize(mean=[0.0, 0.5, 1.0], std=[1.0, 0.5, 0.25])(Sample(image))
    np.testing.assert_allclose(out.image[0, 0], [0.2, -0.6, -3.2], rtol=0, atol=1e-5)
    np.testing.assert_allclose(out.image[0, 1], [0.2, -0.6, -3.2], rtol=0, atol=1e-5)


def test_normalize_zero_std_rejected():
    with pytest.raises(ValidationError, match="must not contain 0"):
        Normalize(std=[0.5, 0.0, 0.5])


# --- parse_transform --------------------------------------------------------------------------------------


def test_parse_transform_builds_each_type():
    assert parse_transform({"type": "Resize", "target_size": [256, 144]}) == Resize(target_size=(256, 144))
    assert parse_transform({"type": "ResizeByShort", "short_size": 512}) == ResizeByShort(short_size=512)
    assert parse_transform({"type": "ResizeByLong", "long_size": 1280}) == ResizeByLong(long_size=1280)
    assert parse_transform({"type": "LimitLong", "max_long": 9}) == LimitLong(max_long=9)
    assert parse_transform({"type": "Padding", "target_size": 8}) == Padding(target_size=(8, 8))
    assert parse_transform({"type": "Normalize"}) == Normalize()


def test_parse_transform_unknown_type_named():
    with pytest.raises(ValueError, match="unknown transform type 'RandomFlip'"):
        parse_transform({"type": "RandomFlip"})


def test_parse_transform_needs_mapping_with_type():
    with pytest.raises(ValueError, match="mapping with a 'type'"):
        parse_transform({"target_size": [4, 4]})
    with pytest.raises(ValueError, match="mapping with a 'type'"):
        parse_transform(["Resize"])  # type: ignore[arg-type]


def test_parse_transform_random_interp_and_extra_key():
    with pytest.raises(ValueError, match="RANDOM"):
        parse_transform({"type": "Resize", "interp": "RANDOM"})
    with pytest.raises(ValueError, match="bogus"):
        parse_transform({"type": "Normalize", "bogus": 1})
