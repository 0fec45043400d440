"""Turn a network output for one image into a label map (and class scores) at the image's original size."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from segcore.modelconfig import Postprocess

TransInfo = list[tuple[str, tuple[int, int]]]


@dataclass(frozen=True)
class SegmentationResult:
    """label_map: H x W class ids; scores: C x H x W class probabilities (None if not asked for or not known)."""

    label_map: np.ndarray
    scores: np.ndarray | None = None

    def classes_present(self) -> list[int]:
        """The class ids that occur in the label map, ascending (a histogram: np.unique would sort every pixel)."""
        labels = self.label_map
        if labels.size == 0:
            return []
        if labels.dtype == np.uint8:
            counts = cv2.calcHist([np.ascontiguousarray(labels)], [0], None, [256], [0, 256]).ravel()
        elif labels.min() < 0:
            return np.unique(labels).tolist()
        else:
            counts = np.bincount(labels.ravel().astype(np.int64, copy=False))
        return np.flatnonzero(counts).tolist()


class InvalidOutput(ValueError):
    """The model produced an output whose shape does not fit its declared output op."""


def _nearest_index(out_len: int, in_len: int) -> np.ndarray:
    """Paddle's nearest interpolation (align_corners=False): source index int(float32(in / out) * i). OpenCV's
    INTER_NEAREST computes it in double and picks another row or column in about 1 resize of 8."""
    if out_len <= 1:
        return np.zeros(out_len, np.intp)
    ratio = np.float32(in_len) / np.float32(out_len)
    return np.minimum((ratio * np.arange(out_len, dtype=np.float32)).astype(np.intp), in_len - 1)


def reverse_transform(array: np.ndarray, trans_info: TransInfo, interpolation: int) -> np.ndarray:
    """Undo the recorded resizes and paddings of an H x W or H x W x C array, last step first, as PaddleSeg's
    reverse_transform does (nearest: Paddle's index rule; bilinear: half-pixel centres, which OpenCV shares)."""
    for op, (h, w) in reversed(trans_info):
        if op == "padding":
            array = array[:h, :w]
        elif array.shape[:2] != (h, w) and interpolation == cv2.INTER_NEAREST:
            array = array[_nearest_index(h, array.shape[0])][:, _nearest_index(w, array.shape[1])]
        elif array.shape[:2] != (h, w):
            array = cv2.resize(array, (w, h), interpolation=interpolation)
    return array


def resize_maps(chw: np.ndarray, trans_info: TransInfo) -> np.ndarray:
    """Bilinear reverse transform of C x H x W float maps, returned as H x W x C float32."""
    hwc = np.ascontiguousarray(chw.astype(np.float32, copy=False).transpose(1, 2, 0))
    out = reverse_transform(hwc, trans_info, cv2.INTER_LINEAR)
    return out if out.ndim == 3 else out[:, :, None]


def as_labels(labels: np.ndarray) -> np.ndarray:
    """Class ids as uint8 when they fit, else int32."""
    if labels.size and labels.min() >= 0 and labels.max() < 256:
        return labels.astype(np.uint8, copy=False)
    return labels.astype(np.int32, copy=False)


def _softmax(hwc: np.ndarray) -> np.ndarray:
    shifted = np.exp(hwc - hwc.max(axis=2, keepdims=True))
    return shifted / shifted.sum(axis=2, keepdims=True)


def _foreground(maps: np.ndarray, op: str) -> np.ndarray:
    fg = maps[:, :, 0]
    return 1.0 / (1.0 + np.exp(-fg)) if op == "none" else fg


def labels_from_maps(maps: np.ndarray, op: str) -> np.ndarray:
    """Class ids of restored H x W x C maps: foreground probability >= 0.5 for one channel, else argmax."""
    if op == "sigmoid" or maps.shape[2] == 1:
        return (_foreground(maps, op) >= 0.5).view(np.uint8)
    return as_labels(maps.argmax(axis=2))


def postprocess(output: np.ndarray, spec: Postprocess, trans_info: TransInfo, want_scores: bool) -> SegmentationResult:
    """Map one item of the segmentation output (no batch dim) back to the original image."""
    op = spec.output_op
    if op == "argmax":
        labels = output[0] if output.ndim == 3 and output.shape[0] == 1 else output
        if labels.ndim != 2:
            raise InvalidOutput(f"argmax output must be H x W per image, got shape {list(output.shape)}")
        restored = reverse_transform(as_labels(labels), trans_info, cv2.INTER_NEAREST)
        return SegmentationResult(label_map=restored, scores=None)
    if output.ndim != 3:
        raise InvalidOutput(f"{op} output must be C x H x W per image, got shape {list(output.shape)}")
    maps = resize_maps(output, trans_info)
    labels = labels_from_maps(maps, op)
    if not want_scores:
        return SegmentationResult(label_map=labels)
    if op == "sigmoid" or maps.shape[2] == 1:
        fg = _foreground(maps, op)
        return SegmentationResult(label_map=labels, scores=np.stack([1.0 - fg, fg]))
    probs = _softmax(maps) if op == "none" else maps
    return SegmentationResult(label_map=labels, scores=np.ascontiguousarray(probs.transpose(2, 0, 1)))
