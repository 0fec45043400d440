"""segcore.preprocess: image normalisation to BGR and the Preprocessor tensor."""

from __future__ import annotations

import numpy as np
import pytest

from segcore.modelconfig import Preprocess
from segcore.preprocess import Preprocessor, as_bgr
from segcore.transforms import Normalize, Padding, Resize


def _bgr(b: int, g: int, r: int, h: int = 2, w: int = 3) -> np.ndarray:
    image = np.empty((h, w, 3), dtype=np.uint8)
    image[:, :] = (b, g, r)
    return image


# --- as_bgr -----------------------------------------------------------------------------------------------


def test_as_bgr_gray_replicates_channel():
    gray = np.array([[1, 2], [3, 4]], dtype=np.uint8)
    out = as_bgr(gray)
    assert out.shape == (2, 2, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], gray)


def test_as_bgr_single_channel():
    one = np.array([[[7], [8]]], dtype=np.uint8)
    out = as_bgr(one)
    assert out.shape == (1, 2, 3)
    assert out.tolist() == [[[7, 7, 7], [8, 8, 8]]]


def test_as_bgr_bgra_drops_alpha():
    bgra = np.array([[[1, 2, 3, 255], [4, 5, 6, 0]]], dtype=np.uint8)
    out = as_bgr(bgra)
    assert out.tolist() == [[[1, 2, 3], [4, 5, 6]]]
    assert out.flags["C_CONTIGUOUS"]


def test_as_bgr_three_channels_unchanged():
    image = _bgr(1, 2, 3)
    assert as_bgr(image) is image


@pytest.mark.parametrize("shape", [(4,), (2, 2, 2), (2, 2, 5), (1, 2, 2, 3)])
def test_as_bgr_bad_shapes(shape):
    with pytest.raises(ValueError, match=r"got shape \["):
        as_bgr(np.zeros(shape, dtype=np.uint8))


# --- Preprocessor -----------------------------------------------------------------------------------------


def test_preprocessor_converts_bgr_to_rgb_chw_float32():
    # B=10, G=20, R=30 everywhere; no transforms -> CHW channels must be R, G, B = 30, 20, 10.
    tensor, info = Preprocessor(Preprocess(transforms=[]))(_bgr(10, 20, 30))
    assert tensor.dtype == np.float32
    assert tensor.shape == (3, 2, 3)
    assert tensor.flags["C_CONTIGUOUS"]
    assert tensor[:, 0, 0].tolist() == [30.0, 20.0, 10.0]
    assert info == []


def test_preprocessor_to_rgb_false_keeps_bgr():
    tensor, _ = Preprocessor(Preprocess(to_rgb=False, transforms=[]))(_bgr(10, 20, 30))
    assert tensor[:, 1, 2].tolist() == [10.0, 20.0, 30.0]


def test_preprocessor_mean_applies_in_rgb_order():
    # Pixel B=0, G=0, R=255 -> RGB (255, 0, 0) -> /255 = (1, 0, 0).
    # mean (1, 0, 0), std (1, 1, 1) -> (0, 0, 0). Had the mean been applied to BGR order the first channel
    # would be 0/255 - 1 = -1.
    spec = Preprocess(transforms=[Normalize(mean=[1.0, 0.0, 0.0], std=[1.0, 1.0, 1.0])])
    tensor, _ = Preprocessor(spec)(_bgr(0, 0, 255, h=1, w=1))
    np.testing.assert_allclose(tensor[:, 0, 0], [0.0, 0.0, 0.0], atol=1e-6)


def test_preprocessor_runs_transforms_and_returns_trans_info():
    # 2x3 (h x w) image -> Resize to [2, 1] (w x h) -> Padding to [4, 2] -> Normalize defaults.
    spec = Preprocess(
        transforms=[Resize(target_size=[2, 1]), Padding(target_size=[4, 2], im_padding_value=0), Normalize()]
    )
    tensor, info = Preprocessor(spec)(_bgr(0, 255, 255))
    assert info == [("resize", (2, 3)), ("padding", (1, 2))]
    assert tensor.shape == (3, 2, 4)
    assert tensor.dtype == np.float32
    # Image pixels RGB (255, 255, 0) -> (1, 1, -1); padding 0 -> -1 in every channel.
    np.testing.assert_allclose(tensor[:, 0, 0], [1.0, 1.0, -1.0], atol=1e-6)
    np.testing.assert_allclose(tensor[:, 0, 1], [1.0, 1.0, -1.0], atol=1e-6)
    np.testing.assert_allclose(tensor[:, 0, 3], [-1.0, -1.0, -1.0], atol=1e-6)
    np.testing.assert_allclose(tensor[:, 1, 0], [-1.0, -1.0, -1.0], atol=1e-6)


def test_preprocessor_accepts_gray_and_bgra():
    spec = Preprocess(transforms=[])
    tensor, _ = Preprocessor(spec)(np.full((2, 2), 9, dtype=np.uint8))
    assert tensor.shape == (3, 2, 2)
    assert tensor[:, 1, 1].tolist() == [9.0, 9.0, 9.0]
    bgra = np.zeros((1, 1, 4), dtype=np.uint8)
    bgra[0, 0] = (1, 2, 3, 4)
    tensor, _ = Preprocessor(spec)(bgra)
    assert tensor[:, 0, 0].tolist() == [3.0, 2.0, 1.0]


def test_preprocessor_rejects_empty_image():
    with pytest.raises(ValueError, match="zero width or height"):
        Preprocessor(Preprocess())(np.zeros((0, 3, 3), dtype=np.uint8))


def test_pixel_dtype_decides_whether_a_resize_rounds():
    """float32 (PaddleSeg): the resize keeps fractions; uint8 (MediaPipe): the resized image is 8-bit first."""
    image = np.zeros((1, 4, 3), np.uint8)
    image[0, 1::2] = 1  # 0,1,0,1 -> halving the width averages to 0.5 exactly at each output pixel
    transforms = [Resize(target_size=(2, 1)), Normalize(mean=(0.0,), std=(1.0,))]
    exact, _ = Preprocessor(Preprocess(transforms=transforms))(image)
    rounded, _ = Preprocessor(Preprocess(transforms=transforms, pixel_dtype="uint8"))(image)
    np.testing.assert_allclose(exact[0, 0], [0.5 / 255, 0.5 / 255], rtol=1e-6)
    assert set(np.round(rounded[0, 0] * 255, 3).tolist()) <= {0.0, 1.0}


def test_uint8_pixels_pad_fractional_values_in_float():
    image = np.full((1, 1, 3), 9, np.uint8)
    spec = Preprocess(transforms=[Padding(target_size=(2, 1)), Normalize(mean=(0.0,), std=(1.0,))], pixel_dtype="uint8")
    tensor, _ = Preprocessor(spec)(image)
    np.testing.assert_allclose(tensor[0, 0] * 255, [9.0, 127.5], rtol=1e-6)
