"""Find the main face of a portrait with OpenCV's Haar cascades."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import NamedTuple

import cv2
import numpy as np

CASCADES = ("haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt2.xml")  # tried in this order
EYE_CASCADE = "haarcascade_eye.xml"
DETECT_MAX_SIDE = 320  # detection runs on a copy no larger than this (Haar cost grows with pixels)
MIN_FACE_FRACTION = 1 / 12  # smallest face searched for, as a fraction of the shorter side (full-body shots)
SCALE_STEP = 1.15  # Haar pyramid step: 1.1 is ~1.5x slower for little gain at this size

_local = threading.local()  # CascadeClassifier objects are not safe to share between threads


class FaceBox(NamedTuple):
    """A face rectangle (x, y, w, h) in the original image's pixels."""

    x: int
    y: int
    w: int
    h: int

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


def _cascade(name: str) -> cv2.CascadeClassifier:
    cache: dict[str, cv2.CascadeClassifier] | None = getattr(_local, "cascades", None)
    if cache is None:
        cache = _local.cascades = {}
    if name not in cache:
        classifier = cv2.CascadeClassifier(cv2.data.haarcascades + name)  # type: ignore[attr-defined]  # stubs lack cv2.data
        if classifier.empty():
            raise RuntimeError(f"OpenCV cascade {name} could not be loaded")
        cache[name] = classifier
    return cache[name]


def _has_eye(gray: np.ndarray, face: Sequence[int]) -> bool:
    x, y, w, h = (int(v) for v in face)
    upper = gray[y : y + h * 3 // 5, x : x + w]  # the eyes sit in the upper part of the box
    min_eye = max(8, w // 10)
    return len(_cascade(EYE_CASCADE).detectMultiScale(upper, 1.1, 3, minSize=(min_eye, min_eye))) > 0


def detect_face(image_bgr: np.ndarray, *, confirm_eyes: bool = False) -> FaceBox | None:
    """The largest frontal face, or None. With `confirm_eyes`, faces with no detectable eye are ignored."""
    height, width = image_bgr.shape[:2]
    factor = min(1.0, DETECT_MAX_SIDE / max(height, width))
    gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    if factor < 1.0:
        gray = cv2.resize(gray, (round(width * factor), round(height * factor)), interpolation=cv2.INTER_AREA)
    gray = cv2.equalizeHist(gray)
    min_side = max(24, round(min(gray.shape) * MIN_FACE_FRACTION))
    for name in CASCADES:
        found = _cascade(name).detectMultiScale(gray, SCALE_STEP, 5, minSize=(min_side, min_side))
        faces = sorted(found, key=lambda f: int(f[2]) * int(f[3]), reverse=True)
        if confirm_eyes:
            faces = [f for f in faces if _has_eye(gray, f)]
        if faces:
            x, y, w, h = (int(v) for v in faces[0])
            x0, y0 = round(x / factor), round(y / factor)
            x1, y1 = min(width, round((x + w) / factor)), min(height, round((y + h) / factor))
            return FaceBox(x0, y0, x1 - x0, y1 - y0)
    return None
