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
    white_balance_gains: tuple[float, float, float] = (1.0, 1.0, 1.0)  # R, G, B, as white_balance applied them
    exposure: float = 1.0  # the gain that brightness applied
    timings_ms: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> IdPhoto:
        box = doc.get("face_box")
        tone = doc.get("tone") or {}
        gains = tone.get("white_balance_gains_rgb", (1.0, 1.0, 1.0))
        return cls(
            photo=base64.b64decode(doc["photo"]),
            content_type=doc["content_type"],
            width=int(doc["width"]),
            height=int(doc["height"]),
            face_box=(int(box[0]), int(box[1]), int(box[2]), int(box[3])) if box else None,
            sheet=base64.b64decode(doc["sheet"]) if doc.get("sheet") else None,
            levelled_degrees=float(doc.get("levelled_degrees", 0.0)),
            white_balance_gains=(float(gains[0]), float(gains[1]), float(gains[2])),
            exposure=float(tone.get("exposure", 1.0)),
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
                    min_kb: int | None = None, white_balance: bool = False, brightness: bool = False,
                    width_mm: float | None = None, height_mm: float | None = None,
                    dpi: int | None = None) -> dict[str, str]:  # fmt: skip
    """Query parameters of POST /v1/id-photo (format None: JPEG, or PNG for a transparent background)."""
    params = {"size": size, "crop": crop, "face": face, "output": "json"}
    switches = (("refine", refine), ("white_balance", white_balance), ("brightness", brightness))
    params.update({key: "true" if value else "false" for key, value in switches})
    optional = (("background", background), ("width", width), ("height", height), ("format", format),
                ("max_kb", max_kb), ("min_kb", min_kb), ("sheet", sheet), ("width_mm", width_mm),
                ("height_mm", height_mm), ("dpi", dpi))  # fmt: skip
    for key, value in optional:
        if value is not None:
            params[key] = str(value)
    return params
