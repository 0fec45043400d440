"""Face detection with the Haar cascades."""

from __future__ import annotations

import cv2
import numpy as np

from idphoto.face import detect_face


def test_finds_the_astronauts_face(astronaut: np.ndarray) -> None:
    face = detect_face(astronaut)
    assert face is not None
    # her face spans about x 180-270, y 65-175 (forehead to chin)
    assert 205 <= face.cx <= 245 and 95 <= face.cy <= 135
    assert 70 <= face.w <= 130 and face.w == face.h
    assert list(face) == [face.x, face.y, face.w, face.h]  # serialises as [x, y, w, h]


def test_box_is_in_original_pixels_when_detecting_on_a_smaller_copy(astronaut: np.ndarray) -> None:
    small = detect_face(astronaut)
    large = detect_face(cv2.resize(astronaut, (1024, 1024), interpolation=cv2.INTER_CUBIC))
    assert small is not None and large is not None
    assert abs(large.cx - 2 * small.cx) <= 12 and abs(large.w - 2 * small.w) <= 20


def test_eye_confirmation(astronaut: np.ndarray) -> None:
    assert detect_face(astronaut, confirm_eyes=True) is not None


def test_no_face_in_a_blank_image() -> None:
    assert detect_face(np.full((480, 360, 3), 200, np.uint8)) is None
