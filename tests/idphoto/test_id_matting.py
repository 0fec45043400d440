"""Guided-filter mattes: soft where the image has an edge, flat elsewhere."""

from __future__ import annotations

import cv2
import numpy as np

from idphoto.matting import guided_filter, refine_alpha

EDGE = 32  # first column of the bright half


def step_image() -> np.ndarray:
    guide = np.full((64, 64), 0.4, np.float32)  # a moderate-contrast edge, as between hair and a wall
    guide[:, EDGE:] = 0.6
    return guide


def test_hard_edge_stays_aligned_and_soft_only_near_it() -> None:
    prob = (step_image() > 0.5).astype(np.float32)
    out = guided_filter(step_image(), prob, radius=4)
    assert out.dtype == np.float32
    soft_columns = np.flatnonzero(((out > 0) & (out < 1)).any(axis=0))
    assert soft_columns.size  # soft...
    assert np.all(np.abs(soft_columns - (EDGE - 0.5)) <= 8.5)  # ...only within two radii of the edge
    assert np.all(out[:, :23] == 0) and np.all(out[:, 41:] == 1)
    assert np.all(out[:, EDGE - 1] < 0.5) and np.all(out[:, EDGE] > 0.5)  # the 0.5 crossing stays put


def test_a_blurry_probability_gets_its_jump_at_the_image_edge() -> None:
    prob = cv2.GaussianBlur((step_image() > 0.5).astype(np.float32), (0, 0), 2)
    out = guided_filter(step_image(), prob, radius=4)
    assert prob[32, EDGE] - prob[32, EDGE - 1] < 0.25
    assert out[32, EDGE] - out[32, EDGE - 1] > 0.5
    assert out[32, EDGE - 1] < 0.5 < out[32, EDGE]


def test_refine_alpha_is_levelled_to_exact_zero_and_one() -> None:
    image = np.zeros((120, 100, 3), np.uint8)
    image[:, 50:] = 230
    prob = np.zeros((120, 100), np.float32)
    prob[:, 50:] = 0.97  # a confident model, not quite 1
    prob[:, :50] = 0.03
    alpha = refine_alpha(image, prob)
    assert alpha.shape == (120, 100) and alpha.dtype == np.float32
    assert np.all(alpha[:, :40] == 0) and np.all(alpha[:, 60:] == 1)
    assert alpha.min() >= 0 and alpha.max() <= 1


def test_refine_alpha_on_a_large_image_uses_the_fast_path() -> None:
    image = np.zeros((1500, 1200, 3), np.uint8)
    image[:, 600:] = 255
    prob = np.zeros((1500, 1200), np.float32)
    prob[:, 600:] = 1
    alpha = refine_alpha(image, prob)
    assert alpha.shape == (1500, 1200)
    assert np.all(alpha[:, :560] == 0) and np.all(alpha[:, 640:] == 1)
    assert np.all(alpha[:, 599] < 0.5) and np.all(alpha[:, 600] > 0.5)
