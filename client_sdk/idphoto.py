"""IdPhoto: what id_photo() returns."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class IdPhoto:
    """An ID photo (JPEG or PNG with 300 DPI metadata) and, when asked for, its print sheet."""

    photo: bytes
    content_type: str
    width: int
    height: int
    face_box: tuple[int, int, int, int] | None = None  # in the source photo once levelled
    sheet: bytes | None = None
    levelled_degrees: float = 0.0  # how far the source was turned to level the eye line
    timings_ms: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> IdPhoto:
        box = doc.get("face_box")
        return cls(
            photo=base64.b64decode(doc["photo"]),
            content_type=doc["content_type"],
            width=int(doc["width"]),
            height=int(doc["height"]),
            face_box=(int(box[0]), int(box[1]), int(box[2]), int(box[3])) if box else None,
            sheet=base64.b64decode(doc["sheet"]) if doc.get("sheet") else None,
            levelled_degrees=float(doc.get("levelled_degrees", 0.0)),
            timings_ms=doc.get("timings_ms", {}),
        )

    def image(self) -> np.ndarray:
        """The photo as an RGB (or RGBA, for transparent backgrounds) uint8 array."""
        with Image.open(io.BytesIO(self.photo)) as img:
            return np.array(img)

    def save(self, path: str | PathLike[str], sheet: bool = False) -> Path:
        """Write the photo (or the print sheet) bytes as they came, keeping the DPI metadata."""
        data = self.sheet if sheet else self.photo
        if data is None:
            raise ValueError("no print sheet: ask for one with sheet='4R' or sheet='5inch'")
        path = Path(path)
        path.write_bytes(data)
        return path


def id_photo_params(background: str | None, size: str, width: int | None, height: int | None, crop: str, face: str,
                    format: str | None, max_kb: int | None, sheet: str | None, refine: bool,
                    min_kb: int | None = None) -> dict[str, str]:  # fmt: skip
    """Query parameters of POST /v1/id-photo (format None: JPEG, or PNG for a transparent background)."""
    params = {"size": size, "crop": crop, "face": face, "refine": "true" if refine else "false", "output": "json"}
    optional = (("background", background), ("width", width), ("height", height), ("format", format),
                ("max_kb", max_kb), ("min_kb", min_kb), ("sheet", sheet))  # fmt: skip
    for key, value in optional:
        if value is not None:
            params[key] = str(value)
    return params
