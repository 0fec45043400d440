"""Folder jobs for the command line: which files to process and where each result goes (names that never collide,
the input's subfolders kept), results rendered as files people can look at, written whole or not at all, and
failures in plain words."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from client_sdk.errors import SegServingError
from client_sdk.progress import Progress
from client_sdk.result import SegResult
from segcore.palette import palette

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
OUTPUTS = ("mask", "probability", "overlay", "cutout")


@dataclass(frozen=True)
class Item:
    """One input file and the file its result goes to."""

    source: Path
    target: Path


def _images(folder: Path, recursive: bool) -> Iterator[Path]:
    found = folder.rglob("*") if recursive else folder.iterdir()
    yield from sorted(p for p in found if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def plan(inputs: list[Path], out: Path, suffix: str, recursive: bool = False) -> list[Item]:
    """Every image to process and its target: OUT/<path relative to the inputs' common folder><suffix>.

    One folder given: its tree is mirrored into OUT (OUT/sub/a.jpg.png). Several inputs: their paths below the
    folder they share are kept, so x/a.jpg and y/a.jpg go to OUT/x/a.jpg.png and OUT/y/a.jpg.png. The whole
    input name is kept before the suffix, so a.jpg and a.png never write the same file. Files given by name are
    taken whatever their suffix; folders contribute the images in them (jpg, jpeg, png, webp, bmp).
    FileNotFoundError for an input that does not exist."""
    resolved = [p.resolve() for p in inputs]
    for given, path in zip(inputs, resolved, strict=True):
        if not path.exists():
            raise FileNotFoundError(f"{given}: no such file or folder")
    roots = [p if p.is_dir() else p.parent for p in resolved]
    base = Path(os.path.commonpath(roots)) if len(roots) > 1 else roots[0]
    items: dict[Path, Item] = {}
    for path in resolved:
        for source in _images(path, recursive) if path.is_dir() else [path]:
            if source not in items:
                relative = source.relative_to(base)
                items[source] = Item(source, out / relative.with_name(relative.name + suffix))
    return list(items.values())


def remaining(items: list[Item], skip_existing: bool, progress: Progress) -> list[Item]:
    """The items still to do: with `skip_existing`, those whose result is already there (whole, since results are
    written atomically) are counted as skipped instead."""
    todo = []
    for item in items:
        if skip_existing and item.target.is_file():
            progress.update("skipped")
        else:
            todo.append(item)
    return todo


def write_atomic(target: Path, data: bytes) -> None:
    """Write `data` to `target` through a temporary file in the same folder: a run stopped midway leaves either
    the whole file or none (so --skip-existing can trust what it finds)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, staging = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(staging, target)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def render(result: SegResult, kind: str, source: Path) -> bytes:
    """The PNG for one result. mask: 0/255 grey for a two-class model, else the class ids with PaddleSeg's
    colour palette (the values stay the ids); probability: the foreground probability as 0-255 grey; overlay:
    the photo tinted by class; cutout: the photo with the probability as alpha."""
    labels = result.label_map
    if kind == "mask":
        classes = result.num_classes or int(labels.max(initial=0)) + 1
        if classes <= 2:
            return _png(Image.fromarray((labels > 0).astype(np.uint8) * 255, mode="L"))
        if classes > 256:
            return _png(Image.fromarray(labels.astype(np.uint16)))
        image = Image.fromarray(labels.astype(np.uint8), mode="P")
        image.putpalette(palette(256).astype(np.uint8).ravel().tolist())
        return _png(image)
    if kind == "probability":
        if result.probability is None:
            raise ValueError("the server sent no probability map")
        return _png(Image.fromarray(np.clip(np.rint(result.probability * 255), 0, 255).astype(np.uint8), mode="L"))
    if kind == "overlay":
        return _png(Image.fromarray(result.overlay(source, rgb=True)))
    if kind == "cutout":
        return _png(Image.fromarray(result.cutout(source, rgb=True), mode="RGBA"))
    raise ValueError(f"unknown output {kind!r}; choose from {', '.join(OUTPUTS)}")


def reason(exc: BaseException) -> str:
    """A failure in plain words, for the one line a file gets."""
    if isinstance(exc, UnidentifiedImageError) or "cannot identify image file" in str(exc):
        return "not an image, or a format that cannot be read (use JPEG, PNG, WebP or BMP)"
    if isinstance(exc, Image.DecompressionBombError):
        return "the image has too many pixels"
    if isinstance(exc, SegServingError):
        message = exc.message.split(": ", 1)[1] if exc.message.startswith("cannot read image ") else exc.message
        return reason(ValueError(message)) if "cannot identify image file" in message else message
    if isinstance(exc, OSError) and exc.strerror:
        return f"cannot read or write the file: {exc.strerror}"
    return str(exc) or type(exc).__name__
