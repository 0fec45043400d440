"""A framing applies to any array of the source's size: the photo, its probability, a coordinate map."""

from __future__ import annotations

import cv2
import numpy as np

from idphoto.framing import frame_face, frame_whole
from idphoto.presets import SIZE_PRESETS


def test_one_framing_maps_every_array_onto_the_same_output_pixels(
    astronaut: np.ndarray, astronaut_probability: np.ndarray
) -> None:
    matrix = cv2.getRotationMatrix2D((256, 256), 8, 1.0)
    turned = cv2.warpAffine(astronaut, matrix, (512, 512), borderMode=cv2.BORDER_REPLICATE)
    probability = cv2.warpAffine(astronaut_probability, matrix, (512, 512), borderMode=cv2.BORDER_REPLICATE)
    framing = frame_face(turned, probability, SIZE_PRESETS["1inch"])
    assert framing.rotation is not None and 5 < abs(framing.levelled_degrees) < 15
    ys, xs = np.mgrid[0:512, 0:512].astype(np.float32)
    photo, map_x, map_y = framing.apply(turned), framing.apply(xs), framing.apply(ys)
    assert photo.shape == (413, 295, 3) and map_x.shape == map_y.shape == (413, 295)
    # the coordinate maps say where each output pixel came from: sampling the source there gives the photo
    resampled = cv2.remap(turned, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = (map_x > 2) & (map_x < 509) & (map_y > 2) & (map_y < 509)
    assert np.abs(resampled[inside].astype(int) - photo[inside].astype(int)).mean() < 3


def test_a_level_head_is_not_resampled_and_a_whole_fit_has_no_face(
    astronaut: np.ndarray, astronaut_probability: np.ndarray
) -> None:
    framing = frame_whole((512, 512), SIZE_PRESETS["1inch"])
    assert framing.rotation is None and framing.face_box is None and framing.levelled_degrees == 0
    level = frame_face(astronaut, astronaut_probability, SIZE_PRESETS["1inch"])
    assert level.face_box is not None
    assert (level.rotation is None) == (level.levelled_degrees == 0)
