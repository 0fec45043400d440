"""The faster preprocessing paths give exactly what the plain OpenCV/NumPy formulas they replaced give: corner
resizes through cached remap maps vs cv2.warpAffine, Normalize's per-channel table or pass vs
float32(x) * scale - offset on the whole image, BGR -> RGB by cv2.cvtColor vs a reversed view, and the
one-channel threshold as a view vs a copy. Random images of several sizes, dtypes and channel counts."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from segcore.modelconfig import Preprocess
from segcore.postprocess import labels_from_maps
from segcore.preprocess import Preprocessor, as_bgr
from segcore.transforms import INTERPOLATIONS, Normalize, Padding, Resize, ResizeByShort, Sample, corner_maps

SIZES = [(640, 480), (333, 517), (97, 143), (200, 1000), (13, 7), (1, 1)]  # (w, h) of the input
TARGETS = [(256, 256), (144, 256), (512, 512), (7, 3)]


def _image(rng: np.random.Generator, w: int, h: int, dtype: type = np.uint8, channels: int | None = 3) -> np.ndarray:
    shape = (h, w) if channels is None else (h, w, channels)
    return rng.integers(0, 256, shape).astype(dtype)


def _warp_affine(image: np.ndarray, tw: int, th: int, interp: int) -> np.ndarray:
    """What Resize(pixel_center="corner") computed before: warpAffine with a float64 scaling matrix."""
    h, w = image.shape[:2]
    matrix = np.array([[tw / w, 0, 0], [0, th / h, 0]], dtype=np.float64)
    return cv2.warpAffine(image, matrix, (tw, th), flags=interp, borderMode=cv2.BORDER_CONSTANT)


def _normalized(image: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """What Normalize computed before: the whole image at once, float32(x) * scale - offset."""
    channels = image.shape[2] if image.ndim == 3 else 1
    mean32 = np.broadcast_to(np.asarray(mean, np.float32), (channels,))
    std32 = np.broadcast_to(np.asarray(std, np.float32), (channels,))
    scale, offset = (1.0 / (255.0 * std32)).astype(np.float32), (mean32 / std32).astype(np.float32)
    return image.astype(np.float32, copy=False) * scale - offset


@pytest.mark.parametrize("interp", sorted(INTERPOLATIONS))
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_corner_resize_equals_warp_affine(interp: str, dtype: type) -> None:
    rng = np.random.default_rng(1)
    for w, h in SIZES:
        for tw, th in TARGETS:
            image = _image(rng, w, h, dtype)
            out = Resize(target_size=(tw, th), interp=interp, pixel_center="corner")(Sample(image))
            expected = _warp_affine(image, tw, th, INTERPOLATIONS[interp])
            assert out.image.dtype == expected.dtype and out.image.shape == expected.shape
            np.testing.assert_array_equal(out.image, expected, err_msg=f"{interp} {w}x{h} -> {tw}x{th}")
            assert out.trans_info == [("resize", (h, w))]


def test_corner_maps_are_cached_and_read_only() -> None:
    first, second = corner_maps(480, 640, 256, 256, False), corner_maps(480, 640, 256, 256, False)
    assert first[0] is second[0] and first[1] is second[1]
    assert not first[0].flags.writeable and first[1] is not None and not first[1].flags.writeable
    nearest = corner_maps(480, 640, 256, 256, True)
    assert nearest[1] is None and nearest[0].dtype == np.int16 and nearest[0].shape == (256, 256, 2)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("channels", [None, 1, 3, 4])
@pytest.mark.parametrize(
    ("mean", "std"), [((0.5,), (0.5,)), ((0.0,), (1.0,)), ((0.485, 0.456, 0.406, 0.3), (0.229, 0.224, 0.225, 0.7))]
)
def test_normalize_equals_the_whole_image_formula(dtype: type, channels: int | None, mean: tuple[float, ...],
                                                  std: tuple[float, ...]) -> None:  # fmt: skip
    count = channels or 1
    mean, std = (mean[:count], std[:count]) if len(mean) > 1 else (mean, std)
    image = _image(np.random.default_rng(2), 37, 23, dtype, channels)
    if dtype is np.float32:
        image = image + np.float32(0.37)  # fractions, as a float32 resize leaves them
    expected = _normalized(image, mean, std)
    transform = Normalize(mean=mean, std=std)
    hwc = transform(Sample(image.copy())).image
    assert hwc.dtype == np.float32 and hwc.shape == expected.shape
    np.testing.assert_array_equal(hwc, expected)
    chw = transform.to_chw(image)
    assert chw.flags["C_CONTIGUOUS"] and chw.shape == (count, 23, 37)
    np.testing.assert_array_equal(chw, expected.reshape(23, 37, count).transpose(2, 0, 1))


def _preprocess_before(spec: Preprocess, image_bgr: np.ndarray) -> np.ndarray:
    """The Preprocessor as it was: a reversed view for RGB, warpAffine for corner resizes, Normalize on the HWC
    image, then HWC -> CHW."""
    image = as_bgr(image_bgr)
    if spec.to_rgb:
        image = image[:, :, ::-1]
    sample = Sample(image.astype(np.float32) if spec.pixel_dtype == "float32" else image)
    for transform in spec.transforms:
        if isinstance(transform, Resize) and transform.pixel_center == "corner":
            tw, th = transform.output_size(*sample.image.shape[:2])
            sample.image = _warp_affine(sample.image, tw, th, INTERPOLATIONS[transform.interp])
        elif isinstance(transform, Normalize):
            sample.image = _normalized(sample.image, transform.mean, transform.std)
        else:
            sample = transform(sample)
    return np.ascontiguousarray(sample.image.astype(np.float32, copy=False).transpose(2, 0, 1))


SPECS = [
    [Resize(target_size=(256, 256), pixel_center="corner"), Normalize(mean=(0.0,) * 3, std=(1.0,) * 3)],
    [Resize(target_size=(512, 512)), Normalize()],
    [Resize(target_size=(144, 256), interp="CUBIC", pixel_center="corner"),
     Normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))],
    [ResizeByShort(short_size=64), Normalize(mean=(0.4,), std=(0.6,)), Padding(target_size=(400, 400))],
    [Padding(target_size=(700, 1100), im_padding_value=(1.0, 2.5, 3.0)), Normalize(mean=(0.1, 0.2, 0.3))],
    [],
]  # fmt: skip


@pytest.mark.parametrize("transforms", SPECS, ids=lambda t: "+".join(type(x).__name__ for x in t) or "none")
@pytest.mark.parametrize("pixel_dtype", ["float32", "uint8"])
@pytest.mark.parametrize("to_rgb", [True, False])
def test_preprocessor_equals_the_plain_formulas(transforms: list, pixel_dtype: str, to_rgb: bool) -> None:
    rng = np.random.default_rng(3)
    spec = Preprocess(to_rgb=to_rgb, pixel_dtype=pixel_dtype, transforms=transforms)
    for (w, h), channels in zip(SIZES[:4], (3, None, 4, 1), strict=True):
        image = _image(rng, w, h, np.uint8, channels)
        tensor, _ = Preprocessor(spec)(image)
        expected = _preprocess_before(spec, image)
        assert tensor.dtype == np.float32 and tensor.flags["C_CONTIGUOUS"]
        np.testing.assert_array_equal(tensor, expected, err_msg=f"{w}x{h}x{channels}")


@pytest.mark.parametrize("op", ["sigmoid", "none"])
def test_one_channel_labels_are_the_threshold(op: str) -> None:
    maps = np.random.default_rng(4).standard_normal((31, 17, 1)).astype(np.float32)
    fg = maps[:, :, 0] if op == "sigmoid" else 1.0 / (1.0 + np.exp(-maps[:, :, 0]))
    labels = labels_from_maps(maps, op)
    assert labels.dtype == np.uint8 and labels.shape == (31, 17)
    np.testing.assert_array_equal(labels, (fg >= 0.5).astype(np.uint8))
