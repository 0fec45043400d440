"""segcore.images encoders (PNG, JPEG, label and probability maps), overlays, cut-outs and segcore.palette."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from image_samples import NOISE, RED, RNG, decode_unchanged

from segcore.images import (
    cutout,
    decode_image,
    encode_jpeg,
    encode_png,
    label_png,
    overlay,
    probability_png,
    sniff_format,
)
from segcore.palette import palette

# -- encoders --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "array",
    [NOISE[:, :, 0], NOISE, np.dstack([NOISE, NOISE[:, :, :1]]), NOISE[:, :, 0].astype(np.uint16) * 250],
    ids=["gray", "bgr", "bgra", "gray16"],
)
def test_encode_png_round_trip(array: np.ndarray) -> None:
    data = encode_png(array)
    assert data.startswith(b"\x89PNG")
    decoded = decode_unchanged(data)
    assert decoded.dtype == array.dtype
    np.testing.assert_array_equal(decoded, array)


def _row_filters(data: bytes) -> set[int]:
    """The filter type byte of every row of an 8-bit single-channel PNG (from its IHDR and inflated IDAT)."""
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        (size,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + size]
        if kind == b"IHDR":
            width = struct.unpack(">I", body[:4])[0]
        elif kind == b"IDAT":
            idat += body
        pos += 12 + size
    raw = zlib.decompress(idat)
    return {raw[i] for i in range(0, len(raw), width + 1)}


def test_label_and_probability_pngs_use_one_cheap_row_filter() -> None:
    labels = np.zeros((120, 90), np.uint8)
    labels[30:90, 20:70] = 1
    assert _row_filters(label_png(labels)) == {0}  # no filter: class ids compress by run length
    probability = np.linspace(0, 1, 120 * 90, dtype=np.float32).reshape(120, 90)
    assert _row_filters(probability_png(probability)) == {2}  # "up" (libpng's default tries all five per row)


def test_encode_png_non_contiguous() -> None:
    view = NOISE[::2, ::-1]
    np.testing.assert_array_equal(decode_unchanged(encode_png(view)), view)


@pytest.mark.parametrize(
    "array",
    [NOISE.astype(np.float32), NOISE[:, :, :2], NOISE.astype(np.uint16), np.zeros((0, 5), np.uint8)],
    ids=["float", "2ch", "bgr16", "empty"],
)
def test_encode_png_rejects(array: np.ndarray) -> None:
    with pytest.raises(ValueError):
        encode_png(array)


def test_encode_jpeg() -> None:
    data = encode_jpeg(RED, quality=80)
    assert sniff_format(data) == "JPEG"
    assert np.abs(decode_image(data).astype(int) - [0, 0, 255]).max() <= 2
    assert len(encode_jpeg(NOISE, quality=10)) < len(encode_jpeg(NOISE, quality=95))
    with pytest.raises(ValueError):
        encode_jpeg(np.dstack([NOISE, NOISE[:, :, :1]]))


def test_label_png_8bit_round_trip() -> None:
    labels = RNG.integers(0, 256, (37, 53)).astype(np.int64)
    decoded = decode_unchanged(label_png(labels))
    assert decoded.dtype == np.uint8 and decoded.shape == labels.shape
    np.testing.assert_array_equal(decoded, labels)


def test_label_png_16bit_round_trip() -> None:
    labels = RNG.integers(0, 300, (37, 53)).astype(np.int32)
    labels[0, 0] = 65535
    decoded = decode_unchanged(label_png(labels))
    assert decoded.dtype == np.uint16 and decoded.shape == labels.shape
    np.testing.assert_array_equal(decoded, labels)


def test_label_png_uint16_input_with_small_ids_is_8bit() -> None:
    labels = np.array([[0, 1], [2, 255]], np.uint16)
    decoded = decode_unchanged(label_png(labels))
    assert decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, labels)


@pytest.mark.parametrize(
    "labels",
    [np.array([[0, -1]]), np.array([[0, 65536]]), np.zeros((2, 2), np.float32), np.zeros((2, 2, 1), np.uint8)],
    ids=["negative", "over16bit", "float", "3d"],
)
def test_label_png_rejects(labels: np.ndarray) -> None:
    with pytest.raises(ValueError):
        label_png(labels)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_probability_png(dtype: type) -> None:
    prob = np.array([[0.0, 1.0, 0.2, 0.6], [-0.3, 1.6, 0.004, np.nan]], dtype)
    decoded = decode_unchanged(probability_png(prob))
    assert decoded.dtype == np.uint8 and decoded.shape == (2, 4)
    np.testing.assert_array_equal(decoded, [[0, 255, 51, 153], [0, 255, 1, 0]])


def test_probability_png_non_contiguous() -> None:
    prob = RNG.random((3, 20, 30))
    view = prob[1, ::2, ::-1]
    np.testing.assert_array_equal(decode_unchanged(probability_png(view)), np.rint(view * 255))


# -- palette, overlay, cutout ----------------------------------------------------------------------------------------


def reference_palette(num_classes: int) -> list[list[int]]:
    """The bit-interleave loop exactly as PaddleSeg's colour map describes it, black entry dropped."""
    colours = []
    for i in range(num_classes + 1):
        rgb, j, lab = [0, 0, 0], 0, i
        while lab:
            for channel in range(3):
                rgb[channel] |= ((lab >> channel) & 1) << (7 - j)
            j += 1
            lab >>= 3
        colours.append(rgb)
    return colours[1:]


def test_palette() -> None:
    colours = palette(300)
    assert colours.dtype == np.uint8 and colours.shape == (300, 3)
    assert colours[:3].tolist() == [[128, 0, 0], [0, 128, 0], [128, 128, 0]]
    assert colours.tolist() == reference_palette(300)
    assert palette(0).shape == (0, 3)


def test_palette_returns_a_private_copy() -> None:
    palette(4)[0] = 7
    assert palette(4)[0].tolist() == [128, 0, 0]


def test_overlay_half_alpha() -> None:
    image = np.empty((4, 5, 3), np.uint8)
    image[:] = (10, 20, 30)
    labels = np.zeros((4, 5), np.int32)
    labels[1, 2], labels[3, 4] = 1, 2
    out = overlay(image, labels, alpha=0.5)
    assert out.dtype == np.uint8 and out.shape == image.shape
    # class 0 = RGB (128, 0, 0) = BGR (0, 0, 128): (10/2, 20/2, (30 + 128)/2)
    assert out[0, 0].tolist() == [5, 10, 79]
    # class 1 = RGB (0, 128, 0) = BGR (0, 128, 0)
    assert out[1, 2].tolist() == [5, 74, 15]
    # class 2 = RGB (128, 128, 0) = BGR (0, 128, 128)
    assert out[3, 4].tolist() == [5, 74, 79]


def test_overlay_alpha_ends_and_custom_colours() -> None:
    labels = RNG.integers(0, 2, NOISE.shape[:2]).astype(np.uint8)
    colours = np.array([[255, 0, 0], [0, 0, 255]], np.uint8)  # RGB red, blue
    np.testing.assert_array_equal(overlay(NOISE, labels, alpha=0.0, colors=colours), NOISE)
    solid = overlay(NOISE, labels, alpha=1.0, colors=colours)
    np.testing.assert_array_equal(solid, colours[:, ::-1][labels])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"label_map": np.zeros((37, 52), np.uint8)},
        {"label_map": np.full((37, 53), 2, np.uint8), "colors": palette(2)},
        {"label_map": np.full((37, 53), -1, np.int32)},
        {"label_map": np.zeros((37, 53), np.uint8), "alpha": 1.5},
        {"label_map": np.zeros((37, 53), np.uint8), "colors": np.zeros((3, 4), np.uint8)},
    ],
    ids=["shape", "id-over-colours", "negative", "alpha", "colour-shape"],
)
def test_overlay_rejects(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        overlay(NOISE, **kwargs)


def test_cutout() -> None:
    alpha = np.linspace(0.0, 1.0, NOISE.shape[0] * NOISE.shape[1]).reshape(NOISE.shape[:2])
    out = cutout(NOISE, alpha)
    assert out.dtype == np.uint8 and out.shape == (37, 53, 4)
    np.testing.assert_array_equal(out[:, :, :3], NOISE)
    np.testing.assert_array_equal(out[:, :, 3], np.rint(alpha * 255))
    np.testing.assert_array_equal(decode_unchanged(encode_png(out)), out)
    with pytest.raises(ValueError):
        cutout(NOISE, alpha[:-1])
