"""segcore.images on real images encoded in the test with cv2 and Pillow."""

from __future__ import annotations

import io
import pickle
import struct
import tracemalloc
import zlib

import cv2
import numpy as np
import pytest
from image_samples import NOISE, RED, RNG
from PIL import Image

from segcore.images import (
    SUPPORTED_FORMATS,
    ImageError,
    ImageLimits,
    ImageTooLarge,
    UnsupportedImage,
    decode_image,
    sniff_format,
)

DEFAULT_LIMITS = ImageLimits()


def cv2_bytes(ext: str, array: np.ndarray, params: tuple[int, ...] = ()) -> bytes:
    ok, buf = cv2.imencode(ext, array, list(params))
    assert ok
    return buf.tobytes()


def pil_bytes(array_rgb: np.ndarray, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array_rgb).save(buf, fmt, **options)
    return buf.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def handmade_png(width: int, height: int, idat: bytes) -> bytes:
    """8-bit gray PNG whose IHDR claims width x height, whatever the IDAT holds."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


LOSSLESS = {
    "PNG": lambda a: cv2_bytes(".png", a),
    "BMP": lambda a: cv2_bytes(".bmp", a),
    "WEBP": lambda a: cv2_bytes(".webp", a, (cv2.IMWRITE_WEBP_QUALITY, 101)),  # > 100: lossless (VP8L)
}
ENCODERS = {"JPEG": lambda a: cv2_bytes(".jpg", a, (cv2.IMWRITE_JPEG_QUALITY, 95)), **LOSSLESS}


def expect_error(data: bytes, kind: type[ImageError], *fragments: str,
                 limits: ImageLimits = DEFAULT_LIMITS) -> ImageError:  # fmt: skip
    with pytest.raises(ImageError) as info:
        decode_image(data, limits)
    assert type(info.value) is kind
    for fragment in fragments:
        assert fragment in str(info.value)
    return info.value


# -- sniffing and decoding -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", SUPPORTED_FORMATS)
def test_sniff_supported(fmt: str) -> None:
    assert sniff_format(ENCODERS[fmt](NOISE)) == fmt


@pytest.mark.parametrize(
    "data",
    [b"", b"hello world", b"BMW is a car brand, not a bitmap", pil_bytes(NOISE, "GIF"), pil_bytes(NOISE, "TIFF")],
)
def test_sniff_other(data: bytes) -> None:
    assert sniff_format(data) is None


@pytest.mark.parametrize("fmt", SUPPORTED_FORMATS)
def test_pure_red_stays_bgr(fmt: str) -> None:
    image = decode_image(ENCODERS[fmt](RED))
    assert image.dtype == np.uint8 and image.shape == (16, 24, 3)
    if fmt == "JPEG":
        assert np.abs(image.astype(int) - [0, 0, 255]).max() <= 2
    else:
        assert (image == [0, 0, 255]).all()


@pytest.mark.parametrize("fmt", sorted(LOSSLESS))
def test_lossless_round_trip(fmt: str) -> None:
    np.testing.assert_array_equal(decode_image(LOSSLESS[fmt](NOISE)), NOISE)


def test_jpeg_round_trip_is_close() -> None:
    smooth = cv2.GaussianBlur(NOISE, (9, 9), 3)
    image = decode_image(cv2_bytes(".jpg", smooth, (cv2.IMWRITE_JPEG_QUALITY, 100)))
    assert image.shape == smooth.shape
    assert np.abs(image.astype(int) - smooth).mean() < 2


@pytest.mark.parametrize(
    "options", [{"quality": 80}, {"lossless": True}, {"quality": 80, "alpha": True}], ids=["VP8", "VP8L", "VP8X"]
)
def test_webp_chunk_kinds(options: dict[str, object]) -> None:
    rgb = np.ascontiguousarray(RED[:, :, ::-1])
    if options.pop("alpha", False):
        rgb = np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])
    data = pil_bytes(rgb, "WEBP", **options)
    image = decode_image(data)
    assert image.shape == (16, 24, 3)
    assert np.abs(image.astype(int) - [0, 0, 255]).max() <= 4


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP"])
def test_gray_expands_to_three_equal_channels(fmt: str) -> None:
    gray = NOISE[:, :, 0] if fmt != "JPEG" else cv2.GaussianBlur(NOISE[:, :, 0], (9, 9), 3)
    data = pil_bytes(gray, fmt)
    image = decode_image(data)
    assert image.shape == (37, 53, 3)
    assert (image[:, :, 0] == image[:, :, 1]).all() and (image[:, :, 1] == image[:, :, 2]).all()
    if fmt != "JPEG":
        np.testing.assert_array_equal(image[:, :, 0], gray)


def test_rgba_png_drops_alpha() -> None:
    bgra = np.dstack([NOISE, RNG.integers(0, 256, NOISE.shape[:2], dtype=np.uint8)])
    np.testing.assert_array_equal(decode_image(cv2_bytes(".png", bgra)), NOISE)


def test_palette_png_expands() -> None:
    data = pil_bytes(np.ascontiguousarray(RED[:, :, ::-1]), "PNG")
    data = pil_bytes(np.asarray(Image.open(io.BytesIO(data)).convert("P")), "PNG")
    assert decode_image(data).shape == (16, 24, 3)


@pytest.mark.parametrize("channels", [1, 3])
def test_16bit_png_becomes_8bit_bgr(channels: int) -> None:
    levels = NOISE if channels == 3 else NOISE[:, :, 0]
    wide = levels.astype(np.uint16) * 257  # 8-bit value v stored as v * 257: v under any 16 -> 8 bit scaling
    image = decode_image(cv2_bytes(".png", wide))
    assert image.dtype == np.uint8 and image.shape == (37, 53, 3)
    np.testing.assert_array_equal(image, NOISE if channels == 3 else np.dstack([levels] * 3))


def test_jpeg_exif_orientation_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = pil_bytes(np.ascontiguousarray(RED[:, :, ::-1]), "JPEG", exif=exif)
    assert decode_image(data).shape == (24, 16, 3)


def test_jpeg_with_bytes_after_eoi_decodes() -> None:
    data = cv2_bytes(".jpg", RED)
    for tail in (b"\x00" * 64, b"appended trailer \xff\xd8 data"):
        assert decode_image(data + tail).shape == (16, 24, 3)


def test_limits_allow_images_at_the_limit() -> None:
    image = decode_image(cv2_bytes(".png", NOISE), ImageLimits(max_pixels=37 * 53, max_side=53))
    assert image.shape == (37, 53, 3)


# -- errors ----------------------------------------------------------------------------------------------------------


def test_empty_body() -> None:
    expect_error(b"", ImageError, "empty")


@pytest.mark.parametrize(
    "data",
    [pil_bytes(NOISE, "GIF"), pil_bytes(NOISE, "TIFF"), b"plain text, not an image\n"],
    ids=["gif", "tiff", "text"],
)
def test_unsupported_format(data: bytes) -> None:
    expect_error(data, UnsupportedImage, "unsupported image format", "JPEG, PNG, WEBP, BMP")


@pytest.mark.parametrize("fmt", SUPPORTED_FORMATS)
def test_truncated(fmt: str) -> None:
    data = ENCODERS[fmt](NOISE)
    for size in (len(data) // 2, len(data) - 1):
        expect_error(data[:size], ImageError, f"truncated {fmt} image")


@pytest.mark.parametrize("fmt", SUPPORTED_FORMATS)
def test_truncated_inside_header(fmt: str) -> None:
    expect_error(ENCODERS[fmt](NOISE)[:20], ImageError, f"truncated {fmt} image")


def test_corrupt_png_data_after_valid_header() -> None:
    garbage = RNG.integers(0, 256, 200, dtype=np.uint8).tobytes()
    expect_error(handmade_png(10, 10, garbage), ImageError, "corrupt PNG image")


def test_corrupt_png_checksum() -> None:
    data = bytearray(cv2_bytes(".png", NOISE))
    idat = data.find(b"IDAT")
    data[idat + 10] ^= 0xFF
    expect_error(bytes(data), ImageError, "corrupt PNG image")


def test_corrupt_jpeg_segments() -> None:
    data = b"\xff\xd8" + b"\xff\xe0\x00\x06JFIF" + b"garbage where the next marker belongs" + b"\xff\xd9"
    expect_error(data, ImageError, "corrupt JPEG image")


def test_png_first_chunk_not_ihdr() -> None:
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"tEXt", b"comment\x00text" + bytes(20)) + png_chunk(b"IEND", b"")
    expect_error(data, ImageError, "corrupt PNG image", "IHDR")


def test_zero_size_header() -> None:
    expect_error(handmade_png(0, 10, zlib.compress(b"")), ImageError, "corrupt PNG image", "0x10")


def test_decompression_bomb_rejected_from_header() -> None:
    data = handmade_png(30_000, 30_000, zlib.compress(b"\x00" * 30_001))
    assert len(data) < 200
    tracemalloc.start()
    try:
        expect_error(data, ImageTooLarge, "30000x30000", "20000")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_pixel_limit() -> None:
    expect_error(cv2_bytes(".png", NOISE), ImageTooLarge, "53x37", "1000 pixels", limits=ImageLimits(max_pixels=1000))


@pytest.mark.parametrize("fmt", SUPPORTED_FORMATS)
def test_side_limit_from_each_header(fmt: str) -> None:
    expect_error(ENCODERS[fmt](NOISE), ImageTooLarge, "53x37", "50 pixels per side", limits=ImageLimits(max_side=50))


def test_limits_beyond_opencv_rejected() -> None:
    with pytest.raises(ValueError, match="image limits"):
        ImageLimits(max_pixels=2**31)
    with pytest.raises(ValueError, match="image limits"):
        ImageLimits(max_side=0)


def test_image_errors_pickle_with_their_kind() -> None:
    error = pickle.loads(pickle.dumps(ImageTooLarge("too big")))
    assert isinstance(error, ImageTooLarge) and isinstance(error, ValueError) and str(error) == "too big"
