"""Mattes from a coarse probability: levelled to exact 0 and 1 away from the outline, and on the outline the
alpha that the pixel's colour implies where person and background colours differ."""

from __future__ import annotations

import cv2
import numpy as np

from idphoto.matting import LEVELS, guided_alpha, refine_alpha

PERSON = (40, 90, 160)  # BGR: a warm skin-like colour
WALL = (200, 200, 200)


def soft_edge(width: int = 600, edge: float = 300.0, ramp: float = 6.0) -> tuple[np.ndarray, ...]:
    """A person (right) meeting a wall (left) over a `ramp`-pixel soft edge: the image, its true alpha and a
    coarse, blurry probability with its 0.5 crossing 3 px off the true one (as the 256 px model gives)."""
    x = np.arange(width, dtype=np.float32)[None, :].repeat(40, axis=0)
    truth = np.clip((x - edge) / ramp + 0.5, 0, 1)
    image = truth[..., None] * np.array(PERSON, np.float32) + (1 - truth[..., None]) * np.array(WALL, np.float32)
    coarse = cv2.GaussianBlur((x >= edge + 3).astype(np.float32), (0, 0), 6)
    return np.floor(image + 0.5).astype(np.uint8), truth, coarse


def test_refine_alpha_reads_the_soft_edge_from_the_colours() -> None:
    image, truth, coarse = soft_edge()
    alpha = refine_alpha(image, coarse)
    assert alpha.shape == truth.shape and alpha.dtype == np.float32
    band = slice(285, 316)
    error = np.abs(alpha[:, band] - truth[:, band])
    assert error.max() < 0.06
    assert np.abs(guided_alpha(image, coarse)[:, band] - truth[:, band]).mean() > 5 * error.mean()
    assert np.all(alpha[:, :280] == 0) and np.all(alpha[:, 320:] == 1)


def test_where_person_and_wall_look_alike_the_guided_alpha_stands() -> None:
    image = np.full((40, 600, 3), 128, np.uint8)  # no colour difference to read alpha from
    _, _, coarse = soft_edge()
    alpha = refine_alpha(image, coarse)
    band = (alpha > 0) & (alpha < 1)
    low, high = LEVELS
    assert band.any()
    assert np.allclose(alpha[band], np.clip((guided_alpha(image, coarse)[band] - low) / (high - low), 0, 1), atol=1e-3)


def test_guided_alpha_is_levelled_to_exact_zero_and_one() -> None:
    image = np.zeros((120, 100, 3), np.uint8)
    image[:, 50:] = 230
    prob = np.zeros((120, 100), np.float32)
    prob[:, 50:] = 0.97  # a confident model, not quite 1
    prob[:, :50] = 0.03
    alpha = guided_alpha(image, prob)
    assert alpha.shape == (120, 100) and alpha.dtype == np.float32
    assert np.all(alpha[:, :40] == 0) and np.all(alpha[:, 60:] == 1)


def test_large_images_take_the_work_size_path_and_keep_the_outline() -> None:
    image = np.zeros((1500, 1200, 3), np.uint8)
    image[:, 600:] = 255
    prob = np.zeros((1500, 1200), np.float32)
    prob[:, 600:] = 1
    for alpha in (guided_alpha(image, prob), refine_alpha(image, prob)):
        assert alpha.shape == (1500, 1200)
        assert np.all(alpha[:, :560] == 0) and np.all(alpha[:, 640:] == 1)
        assert np.all(alpha[:, 599] < 0.5) and np.all(alpha[:, 600] > 0.5)
