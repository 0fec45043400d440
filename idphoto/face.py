"""Faces and their landmarks with two MediaPipe models run on ONNX Runtime (idphoto/models/face, built by
`python -m convert.face_models`).

BlazeFace (short range) sees the photo letterboxed into 128x128 and scores 896 fixed anchors; each kept anchor
gives a box and six keypoints, and overlapping ones are merged by score-weighted averaging, as MediaPipe does.
Each face is then cut out square (1.5x its box), turned upright by its eye keypoints, and the landmark model
places 468 points on it at 192x192: eye corners, chin and the rest to within a pixel or two of the photo."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np

MODELS = Path(__file__).parent / "models" / "face"
DETECTOR, LANDMARKER = MODELS / "face_detection_short_range.onnx", MODELS / "face_landmark.onnx"
SIZE = 128  # the detector's input side
DETECT_MAX_SIDE = 512  # detection runs on a copy no larger than this
MIN_WINDOW, MAX_WINDOWS = 32, 16  # squares looked at: at least this wide (px of that copy), at most this many
MESH_SIZE = 192  # the landmark model's input side
MESH_CONTEXT = 1.5  # its crop: a square this many face boxes wide
MESH_MIN_SCORE = 0.5  # below this the landmark model says there is no face in its crop
MESH_PASSES = 2
# Face Mesh indices: the eyes' outer and inner corners (the person's right eye first), the chin (menton).
RIGHT_EYE_CORNERS, LEFT_EYE_CORNERS, CHIN = (33, 133), (362, 263), 152
# The anchors: one 16x16 grid (stride 8) with 2 anchors per cell, then one 8x8 grid (stride 16) with 6.
GRIDS = ((16, 2), (8, 6))
MIN_SCORE = 0.5
MERGE_IOU = 0.3  # detections overlapping more than this are one face
SCORE_CLIP = 100.0


class Point(NamedTuple):
    x: float
    y: float


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


class Detection(NamedTuple):
    """BlazeFace's answer for one face, in the original image's pixels; `keypoints`: the person's right eye,
    left eye, nose tip, mouth centre, right and left ear tragion."""

    box: FaceBox
    score: float
    keypoints: tuple[Point, ...]

    @property
    def roll_degrees(self) -> float:
        (rx, ry), (lx, ly) = self.keypoints[:2]
        return math.degrees(math.atan2(ly - ry, lx - rx))


class Face(NamedTuple):
    """A face: BlazeFace's box and score, and the 468 Face Mesh landmarks (x, y in the original image's pixels).
    `right_eye` is the person's right eye (on the left of a photo of them)."""

    box: FaceBox
    score: float
    mesh: np.ndarray  # (468, 2)

    @property
    def right_eye(self) -> Point:
        return Point(*(float(v) for v in self.mesh[list(RIGHT_EYE_CORNERS)].mean(axis=0)))

    @property
    def left_eye(self) -> Point:
        return Point(*(float(v) for v in self.mesh[list(LEFT_EYE_CORNERS)].mean(axis=0)))

    @property
    def eye_center(self) -> Point:
        (rx, ry), (lx, ly) = self.right_eye, self.left_eye
        return Point((rx + lx) / 2, (ry + ly) / 2)

    @property
    def chin(self) -> Point:
        return Point(*(float(v) for v in self.mesh[CHIN]))

    @property
    def roll_degrees(self) -> float:
        """The eye line's angle from horizontal, positive when the person's left eye (photo right) is lower."""
        (rx, ry), (lx, ly) = self.right_eye, self.left_eye
        return math.degrees(math.atan2(ly - ry, lx - rx))


def _anchors() -> np.ndarray:
    """(896, 2) anchor centres, in units of the input side."""
    centres = []
    for cells, per_cell in GRIDS:
        ys, xs = np.meshgrid((np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.log_severity_level = 3  # paddle2onnx's folded constants draw one warning each at load
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class FaceFinder:
    """Thread-safe: one ONNX Runtime session per model, shared by every caller."""

    def __init__(self, threads: int = 1) -> None:
        self._detector, self._landmarker = _session(DETECTOR, threads), _session(LANDMARKER, threads)
        self._anchors = _anchors() * SIZE

    def faces(self, image_bgr: np.ndarray, min_score: float = MIN_SCORE) -> list[Face]:
        """Every face found with its landmarks, largest first."""
        found = (self.landmarks(image_bgr, d) for d in self.detect(image_bgr, min_score))
        return sorted((f for f in found if f is not None), key=lambda f: f.box.w * f.box.h, reverse=True)

    def detect(self, image_bgr: np.ndarray, min_score: float = MIN_SCORE) -> list[Detection]:
        """BlazeFace's detections, highest score first. The short-range model needs a face to fill a fair part of
        its 128 px view: it looks at the whole photo, at squares as wide as its shorter side, and when that finds
        nothing, at squares half as wide (a person standing in a wide or tall photo)."""
        factor = min(1.0, DETECT_MAX_SIDE / max(image_bgr.shape[:2]))
        if factor < 1.0:  # every view is reduced to 128 px anyway: reduce the photo once
            size = (max(1, round(image_bgr.shape[1] * factor)), max(1, round(image_bgr.shape[0] * factor)))
            image_bgr = cv2.resize(image_bgr, size, interpolation=cv2.INTER_AREA)
        height, width = image_bgr.shape[:2]
        points, scores = self._run(image_bgr, min_score)
        for fraction in (1.0, 0.5):
            side = round(min(height, width) * fraction)
            windows = _windows(width, height, side)
            if (fraction < 1.0 and scores.size) or side < MIN_WINDOW or len(windows) > MAX_WINDOWS:
                break  # found already; or a sliver of a picture, where no face fits (and windows would be many)
            for x, y in windows:
                if (side, side) == (width, height):
                    continue
                found, found_scores = self._run(image_bgr[y : y + side, x : x + side], min_score)
                found[:, [0, *range(2, 8)]] += np.array([x, y], np.float64)
                points, scores = np.concatenate([points, found]), np.concatenate([scores, found_scores])
        return [_detection(p / factor, s) for p, s in _merge(points, scores)] if scores.size else []

    def _run(self, image_bgr: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray]:
        """(n, 8, 2) decoded points (centre, size, six keypoints) in `image_bgr`'s pixels, and their scores."""
        height, width = image_bgr.shape[:2]
        scale = SIZE / max(height, width)
        inner_w, inner_h = max(1, round(width * scale)), max(1, round(height * scale))
        left, top = (SIZE - inner_w) // 2, (SIZE - inner_h) // 2
        canvas = np.zeros((SIZE, SIZE, 3), np.uint8)
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        canvas[top : top + inner_h, left : left + inner_w] = cv2.resize(image_bgr, (inner_w, inner_h),
                                                                        interpolation=interpolation)  # fmt: skip
        tensor = (canvas[:, :, ::-1].astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
        regressors, scores = self._detector.run(None, {"image": np.ascontiguousarray(tensor)})
        logits = np.clip(scores[0, :, 0].astype(np.float64), -SCORE_CLIP, SCORE_CLIP)
        probability = 1.0 / (1.0 + np.exp(-logits))
        keep = np.flatnonzero(probability >= min_score)
        points = regressors[0, keep].astype(np.float64).reshape(len(keep), 8, 2)
        located = [0, *range(2, 8)]  # relative to the anchor; the size is not
        points[:, located] += self._anchors[keep, None, :]
        points[:, located] -= np.array([left, top], np.float64)
        return points / scale, probability[keep]

    def landmarks(self, image_bgr: np.ndarray, detection: Detection) -> Face | None:
        """The landmark model on an upright square crop around the face; None if it sees no face there. The crop
        is turned first by the detector's eye keypoints (a few degrees off), then once more by the landmarks'
        own eye line, on which the model is most exact."""
        box, roll = detection.box, detection.roll_degrees
        mesh = None
        for _ in range(MESH_PASSES):
            mesh = self._mesh(image_bgr, (box.cx, box.cy), MESH_CONTEXT * max(box.w, box.h), roll)
            if mesh is None:
                return None
            roll = Face(box, detection.score, mesh).roll_degrees
        assert mesh is not None
        return Face(box, detection.score, mesh)

    def _mesh(self, image_bgr: np.ndarray, centre: tuple[float, float], side: float, roll: float) -> np.ndarray | None:
        matrix = cv2.getRotationMatrix2D(centre, roll, MESH_SIZE / side)
        matrix[:, 2] += np.array([MESH_SIZE / 2 - centre[0], MESH_SIZE / 2 - centre[1]])
        crop = cv2.warpAffine(image_bgr, matrix, (MESH_SIZE, MESH_SIZE), flags=cv2.INTER_LINEAR)
        tensor = (crop[:, :, ::-1].astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
        mesh, score = self._landmarker.run(None, {"image": np.ascontiguousarray(tensor)})
        if 1.0 / (1.0 + math.exp(-float(np.clip(score.ravel()[0], -SCORE_CLIP, SCORE_CLIP)))) < MESH_MIN_SCORE:
            return None
        inverse = cv2.invertAffineTransform(matrix)
        return mesh.reshape(-1, 3)[:, :2].astype(np.float64) @ inverse[:, :2].T + inverse[:, 2]


def _windows(width: int, height: int, side: int) -> list[tuple[int, int]]:
    """Top-left corners of `side` squares covering the image, overlapping by half."""

    def starts(length: int) -> list[int]:
        if length <= side:
            return [0]
        step = max(1, side // 2)
        return sorted({*range(0, length - side, step), length - side})

    return [(x, y) for y in starts(height) for x in starts(width)]


def _corners(points: np.ndarray) -> np.ndarray:
    """(n, 4) x0, y0, x1, y1 from the (n, 8, 2) decoded points."""
    centre, size = points[:, 0], points[:, 1]
    return np.concatenate([centre - size / 2, centre + size / 2], axis=1)


def _merge(points: np.ndarray, scores: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """Score-weighted merging of overlapping detections (MediaPipe's weighted non-maximum suppression)."""
    boxes = _corners(points)
    areas = np.prod(np.maximum(boxes[:, 2:] - boxes[:, :2], 0), axis=1)
    remaining = np.argsort(-scores)
    merged = []
    while remaining.size:
        best = remaining[0]
        low = np.maximum(boxes[remaining, :2], boxes[best, :2])
        high = np.minimum(boxes[remaining, 2:], boxes[best, 2:])
        inter = np.prod(np.maximum(high - low, 0), axis=1)
        overlaps = inter / np.maximum(areas[remaining] + areas[best] - inter, 1e-9) > MERGE_IOU
        group = remaining[overlaps]
        weights = scores[group] / scores[group].sum()
        merged.append(((points[group] * weights[:, None, None]).sum(axis=0), float(scores[best])))
        remaining = remaining[~overlaps]
    return merged


def _detection(points: np.ndarray, score: float) -> Detection:
    (cx, cy), (w, h) = points[0], points[1]
    box = FaceBox(round(cx - w / 2), round(cy - h / 2), max(1, round(w)), max(1, round(h)))
    return Detection(box, score, tuple(Point(float(x), float(y)) for x, y in points[2:]))


_finder: FaceFinder | None = None
_lock = threading.Lock()


def finder() -> FaceFinder:
    """The process's shared face finder, loaded on first use."""
    global _finder
    with _lock:
        if _finder is None:
            _finder = FaceFinder()
        return _finder


def detect_faces(image_bgr: np.ndarray) -> list[Face]:
    """Every face in the photo with its landmarks, largest first."""
    return finder().faces(image_bgr)


def detect_face(image_bgr: np.ndarray) -> FaceBox | None:
    """The largest face's box, or None."""
    faces = detect_faces(image_bgr)
    return faces[0].box if faces else None
