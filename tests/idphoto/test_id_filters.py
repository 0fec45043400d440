"""Box-window filters: the guided filter keeps an edge where the guide has it; weighted means skip unweighted
pixels and say how much weight each window held."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from idphoto.filters import WORK_SIDE, guided_filter, weighted_mean

EDGE = 32  # first column of the bright half


def step_image() -> np.ndarray:
    guide = np.full((64, 64), 0.4, np.float32)  # a moderate-contrast edge, as between hair and a wall
    guide[:, EDGE:] = 0.6
    return guide


def test_hard_edge_stays_aligned_and_soft_only_near_it() -> None:
    prob = (step_image() > 0.5).astype(np.float32)
    out = guided_filter(step_image(), prob, radius=4, eps=1e-3)
    assert out.dtype == np.float32
    soft_columns = np.flatnonzero(((out > 1e-3) & (out < 1 - 1e-3)).any(axis=0))
    assert soft_columns.size  # soft...
    assert np.all(np.abs(soft_columns - (EDGE - 0.5)) <= 8.5)  # ...only within two radii of the edge
    assert np.all(out[:, EDGE - 1] < 0.5) and np.all(out[:, EDGE] > 0.5)  # the 0.5 crossing stays put


def test_a_blurry_probability_gets_its_jump_at_the_image_edge() -> None:
    prob = cv2.GaussianBlur((step_image() > 0.5).astype(np.float32), (0, 0), 2)
    out = guided_filter(step_image(), prob, radius=4, eps=1e-3)
    assert prob[32, EDGE] - prob[32, EDGE - 1] < 0.25
    assert out[32, EDGE] - out[32, EDGE - 1] > 0.5
    assert out[32, EDGE - 1] < 0.5 < out[32, EDGE]


def test_weighted_mean_ignores_pixels_without_weight() -> None:
    x = np.zeros((40, 40, 3), np.float32)
    x[:, :20] = (0.2, 0.4, 0.6)
    x[:, 20:] = (0.9, 0.9, 0.9)  # unweighted: must not leak into the mean
    weight = np.zeros((40, 40), np.float32)
    weight[:, :20] = 1
    mean, support = weighted_mean(x, weight, radius=5)
    assert np.allclose(mean[:, :25], (0.2, 0.4, 0.6), atol=1e-5)  # windows that reach weighted pixels
    assert np.allclose(support[:, :15], 1.0) and np.allclose(support[:, 26:], 0.0)
    assert 0 < support[0, 22] < 1


def test_weighted_mean_on_a_large_image_matches_full_size_where_it_is_smooth() -> None:
    side = WORK_SIDE * 2
    x = np.zeros((side, side, 3), np.float32)
    x[..., 2] = np.linspace(0, 1, side, dtype=np.float32)[None, :]  # a ramp: its window mean is the ramp
    weight = np.ones((side, side), np.float32)
    mean, support = weighted_mean(x, weight, radius=40)
    assert mean.shape == x.shape and support.shape == weight.shape
    centre = slice(100, side - 100)
    assert np.abs(mean[centre, centre, 2] - x[centre, centre, 2]).max() < 2e-3
    assert np.allclose(support, 1.0, atol=1e-5)


@pytest.mark.parametrize(("side", "radius"), [(300, 3), (300, 40), (WORK_SIDE * 2, 20)])
def test_sampling_at_pixels_gives_the_full_maps_values(side: int, radius: int) -> None:
    rng = np.random.default_rng(1)
    x = cv2.GaussianBlur(rng.random((side, side, 3), np.float32), (0, 0), 3)
    weight = (rng.random((side, side)) > 0.3).astype(np.float32)
    at = np.zeros((side, side), bool)
    at[::2, 1::3] = True  # over 32767 points on the large image: more than cv2.remap takes on one side
    mean, support = weighted_mean(x, weight, radius)
    sampled, sampled_support = weighted_mean(x, weight, radius, at=at)
    assert sampled.shape == (at.sum(), 3) and sampled_support.shape == (at.sum(),)
    # cv2.remap interpolates with 1/32 px weights: equal to well within what the colour models need
    assert np.abs(sampled - mean[at]).max() < 2e-3 and np.abs(sampled_support - support[at]).max() < 2e-3
