"""Faces and landmarks with BlazeFace and the Face Mesh landmark model (idphoto/models/face)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from idphoto.face import detect_face, detect_faces, finder


def rotated(image: np.ndarray, degrees: float) -> np.ndarray:
    """`image` turned counter-clockwise (as shown) about its centre, edges replicated."""
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)


def test_finds_the_astronauts_face_and_landmarks(astronaut: np.ndarray) -> None:
    (face,) = detect_faces(astronaut)
    # her face spans about x 180-270, y 65-175 (forehead to chin); pupils near (204, 102) and (247, 104)
    assert 205 <= face.box.cx <= 245 and 95 <= face.box.cy <= 135
    assert 70 <= face.box.w <= 130 and face.box.w == face.box.h
    assert list(face.box) == [face.box.x, face.box.y, face.box.w, face.box.h]  # serialises as [x, y, w, h]
    assert face.mesh.shape == (468, 2) and face.score > 0.8
    assert abs(face.right_eye.x - 204) <= 4 and abs(face.right_eye.y - 102) <= 4
    assert abs(face.left_eye.x - 247) <= 4 and abs(face.left_eye.y - 104) <= 4
    assert 165 <= face.chin.y <= 185 and abs(face.chin.x - 222) <= 8
    assert 2.0 <= face.roll_degrees <= 4.5  # her head leans slightly to her left


@pytest.mark.parametrize("degrees", [-15, -8, -4, 4, 8, 15])
def test_the_eye_line_is_measured_to_a_degree_on_turned_copies(astronaut: np.ndarray, degrees: float) -> None:
    (upright,) = detect_faces(astronaut)
    (turned,) = detect_faces(rotated(astronaut, degrees))
    assert turned.roll_degrees == pytest.approx(upright.roll_degrees - degrees, abs=1.0)


def test_landmarks_are_in_original_pixels_at_any_size(astronaut: np.ndarray) -> None:
    (small,) = detect_faces(astronaut)
    (large,) = detect_faces(cv2.resize(astronaut, (1024, 1024), interpolation=cv2.INTER_CUBIC))
    assert abs(large.box.cx - 2 * small.box.cx) <= 12 and abs(large.box.w - 2 * small.box.w) <= 20
    assert np.abs(large.mesh - 2 * small.mesh).max() <= 12  # a few pixels at twice the size
    (padded,) = detect_faces(cv2.copyMakeBorder(astronaut, 100, 0, 300, 0, cv2.BORDER_CONSTANT, value=(90, 90, 90)))
    assert np.abs(padded.mesh - small.mesh - [300, 100]).max() <= 6


def test_several_faces_are_found_largest_first(astronaut: np.ndarray) -> None:
    smaller = cv2.copyMakeBorder(cv2.resize(astronaut, (384, 384)), 0, 128, 0, 0, cv2.BORDER_REPLICATE)
    pair = np.hstack([astronaut, smaller])
    faces = detect_faces(pair)
    assert len(faces) == 2
    assert faces[0].box.w > faces[1].box.w and faces[0].box.cx < 512 < faces[1].box.cx


def test_no_face_in_pictures_without_one() -> None:
    assert detect_face(np.full((480, 360, 3), 200, np.uint8)) is None
    assert detect_faces(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)) == []


def test_a_detection_the_landmark_model_rejects_is_dropped(astronaut: np.ndarray) -> None:
    (detection,) = finder().detect(astronaut)
    assert finder().landmarks(astronaut, detection) is not None
    blank = np.full_like(astronaut, 128)
    assert finder().landmarks(blank, detection) is None  # the same place in a picture with no face


@pytest.mark.parametrize("shape", [(1, 1, 3), (2, 2, 3), (3, 500, 3), (5000, 10, 3), (10, 5000, 3), (4000, 300, 3)])
def test_slivers_and_specks_find_no_face_without_error(shape: tuple[int, int, int]) -> None:
    assert detect_faces(np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)) == []
