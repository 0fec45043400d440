"""A PaddleSeg-format labelled set: a list file of `image_rel_path label_rel_path` lines under a dataset root."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


class DatasetError(ValueError):
    """The list file or a file it names is missing or malformed."""


@dataclass(frozen=True)
class Sample:
    """One list entry; `line` is its 1-based line number in the list file."""

    image: Path
    label: Path
    line: int


def read_list(dataset_root: Path, val_path: Path) -> list[Sample]:
    """Parse the list (fields separated by whitespace, blank lines skipped) and check that every file exists."""
    dataset_root, val_path = Path(dataset_root), Path(val_path)
    if not dataset_root.is_dir():
        raise DatasetError(f"dataset root {dataset_root} is not a directory")
    try:
        lines = val_path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read list file {val_path}: {exc}") from None
    samples: list[Sample] = []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise DatasetError(
                f"{val_path}:{number}: expected 'image_path label_path', got {len(fields)} field(s): {line.strip()!r}"
            )
        image, label = (dataset_root / f for f in fields)
        for kind, path in (("image", image), ("label", label)):
            if not path.is_file():
                raise DatasetError(f"{val_path}:{number}: {kind} file {path} does not exist")
        samples.append(Sample(image, label, number))
    if not samples:
        raise DatasetError(f"list file {val_path} has no entries")
    return samples


def read_label(path: Path) -> np.ndarray:
    """A label PNG as an H x W array of class ids (palette PNGs give their indices, as PIL reads them)."""
    try:
        with Image.open(path) as png:
            label = np.array(png)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read label {path}: {exc}") from None
    if label.ndim != 2:
        raise DatasetError(f"label {path} must be single-channel class ids, got shape {list(label.shape)}")
    return label


def check_shapes(pred: np.ndarray, label: np.ndarray, sample: Sample) -> None:
    """Labels are compared at the image's original size: a label of another size is a dataset error."""
    if pred.shape != label.shape:
        raise DatasetError(
            f"label {sample.label} is {label.shape[1]}x{label.shape[0]} but image {sample.image} is "
            f"{pred.shape[1]}x{pred.shape[0]}; labels must have their image's size"
        )
