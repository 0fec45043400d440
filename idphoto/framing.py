"""Framing: where the ID photo lies in the source — the face found, its eye line levelled, the crop planned.

A `Framing` is computed once from the photo and its person probability and then applied to any array of the
source's size (the photo, the probability, a reference matte), so all of them land on the same output pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from idphoto.crop import CropPlan, find_crown, plan_face_crop, plan_fit, render
from idphoto.errors import IdPhotoError
from idphoto.face import Face, FaceBox, detect_faces
from idphoto.sizes import SizePreset

FACES = ("single", "largest")  # several faces: refuse (single), or use the largest
MAX_LEVEL_DEGREES = 15.0  # a tilted head is levelled up to this angle; beyond it the photo is refused
MIN_LEVEL_DEGREES = 0.05  # below this the photo is left as it is (no resampling for nothing)


@dataclass(frozen=True)
class Framing:
    """An optional levelling rotation of the source, then a crop plan to the output size."""

    plan: CropPlan
    rotation: np.ndarray | None = None  # 2 x 3 affine matrix levelling the eye line
    face_box: FaceBox | None = None  # in the levelled source's pixels; None when the crop used no face
    levelled_degrees: float = 0.0

    def apply(self, array: np.ndarray) -> np.ndarray:
        """`array` (the source's H x W, any channels) levelled and cropped to the output size."""
        if self.rotation is not None:
            height, width = array.shape[:2]
            array = cv2.warpAffine(array, self.rotation, (width, height), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE)  # fmt: skip  # a body at the edge stays whole
        return render(array, self.plan)

    def face_in_output(self) -> tuple[float, float, float, float] | None:
        """The face box (x, y, w, h) in the output photo's pixels."""
        if self.face_box is None:
            return None
        x, y, w, h = self.face_box
        scale = self.plan.scale
        return ((x - self.plan.left) * scale, (y - self.plan.top) * scale, w * scale, h * scale)


def frame_whole(image_size: tuple[int, int], size: SizePreset) -> Framing:
    """The whole picture fitted into the size (crop=none)."""
    assert size.px is not None
    return Framing(plan_fit(image_size, size.px))


def frame_face(image_bgr: np.ndarray, probability: np.ndarray, size: SizePreset, which: str = "single") -> Framing:
    """The head sized and placed by the size's rules, the eye line levelled first. IdPhotoError(422) names the
    problem: no face, several faces (unless `which` is 'largest'), a head tilted past MAX_LEVEL_DEGREES, or a
    rule the photo cannot meet."""
    assert size.px is not None
    height, width = probability.shape
    face = _the_face(image_bgr, which)
    degrees = face.roll_degrees
    if abs(degrees) > MAX_LEVEL_DEGREES:
        raise IdPhotoError(422, f"the head is tilted by {abs(degrees):.0f} degrees; at most "
                           f"{MAX_LEVEL_DEGREES:.0f} can be levelled, hold the head upright")  # fmt: skip
    rotation = None
    if abs(degrees) >= MIN_LEVEL_DEGREES:
        rotation = cv2.getRotationMatrix2D(face.eye_center, degrees, 1.0)
        probability = cv2.warpAffine(probability, rotation, (width, height), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        face = _turned(face, rotation)
    else:
        degrees = 0.0
    crown, chin = find_crown(probability, face.box), face.chin.y
    plan = plan_face_crop((width, height), face.box, crown, chin, size.px, size.rules, face.eye_center.y)
    return Framing(plan, rotation, face.box, degrees)


def _the_face(image_bgr: np.ndarray, which: str) -> Face:
    faces = detect_faces(image_bgr)
    if not faces:
        raise IdPhotoError(422, "no face found in the photo; retry with crop=none to keep the whole picture without"
                           " the face-aware crop")  # fmt: skip
    if len(faces) > 1 and which != "largest":
        raise IdPhotoError(422, f"{len(faces)} faces found in the photo; an ID photo shows one person (pass "
                           "face=largest to use the largest face)")  # fmt: skip
    return faces[0]


def _turned(face: Face, rotation: np.ndarray) -> Face:
    """The face's landmarks and box moved by the levelling rotation (the box keeps its size)."""
    mesh = face.mesh @ rotation[:, :2].T + rotation[:, 2]
    cx, cy = rotation @ np.array([face.box.cx, face.box.cy, 1.0])
    box = FaceBox(round(cx - face.box.w / 2), round(cy - face.box.h / 2), face.box.w, face.box.h)
    return Face(box, face.score, mesh)
