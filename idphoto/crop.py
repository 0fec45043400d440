"""Crop geometry: where the output photo lies in the source image, and rendering it without distortion.

A plan is a rectangle in source pixels with the target's exact aspect ratio, scaled uniformly to the
target size. It may extend past the top, left and right edges (that area becomes background); it
never extends below the bottom edge, where the body would be cut off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from idphoto.errors import IdPhotoError
from idphoto.face import FaceBox
from idphoto.sizes import ID_RULES, HeadRules

CROWN_ABOVE_BOX = 0.45  # crown estimate above the box top (box heights) when the mask cannot show it
CROWN_SEARCH = 2.0  # look for the crown at most this many box heights above the box (hats, raised hands)
CROWN_MIN_COVER = 0.2  # a row is head when this fraction of the face's central band is person
PERSON_THRESHOLD = 0.5
MIN_UPSCALE_FRACTION = 0.5  # the source crop must be at least half the target size (at most 2x upscaling)


PLACEMENT_STEPS = 81  # head ratios tried across the band by strict placement


@dataclass(frozen=True)
class CropPlan:
    """A source rectangle (floats, may lie partly outside the image) and the output size it maps to.

    `pad_*` are the output pixels that fall outside the source image (pad_bottom is always 0).
    """

    left: float
    top: float
    width: float
    height: float
    out_width: int
    out_height: int
    pad_top: int
    pad_right: int
    pad_bottom: int
    pad_left: int

    @property
    def scale(self) -> float:
        """Output pixels per source pixel, the same along both axes."""
        return self.out_height / self.height


def find_crown(probability: np.ndarray, face: FaceBox) -> float:
    """The top of the head: the highest row of the person region connected to the face, over its central band.

    Walks up from the face box through rows where the person covers the band; falls back to an estimate
    from the box when the mask does not show the head, or when the head touches the image's top edge.
    """
    estimate = face.y - CROWN_ABOVE_BOX * face.h
    x0, x1 = face.x + face.w // 4, face.x + face.w * 3 // 4
    limit = max(0, round(face.y - CROWN_SEARCH * face.h))
    band = probability[limit : face.y + 1, x0:x1] >= PERSON_THRESHOLD
    if band.size == 0:
        return estimate
    is_head = band.mean(axis=1) >= CROWN_MIN_COVER
    if not is_head[-1]:
        return estimate
    gaps = np.flatnonzero(~is_head)
    crown = limit + (int(gaps[-1]) + 1 if gaps.size else 0)
    return min(0.0, estimate) if crown == 0 else float(crown)


def _plan(left: float, top: float, height: float, target: tuple[int, int], image_size: tuple[int, int]) -> CropPlan:
    out_w, out_h = target
    width = height * out_w / out_h
    image_w, image_h = image_size
    if width < out_w * MIN_UPSCALE_FRACTION or height < out_h * MIN_UPSCALE_FRACTION:
        raise IdPhotoError(
            422,
            f"image too small: the crop covers only {width:.0f}x{height:.0f} px of the photo but a {out_w}x{out_h}"
            f" px photo needs at least {math.ceil(out_w * MIN_UPSCALE_FRACTION)}x"
            f"{math.ceil(out_h * MIN_UPSCALE_FRACTION)} px; use a larger photo or one taken closer",
        )
    scale = out_h / height

    def pad(overhang: float) -> int:
        return math.ceil(overhang * scale - 1e-6) if overhang > 0 else 0

    return CropPlan(
        left=left,
        top=top,
        width=width,
        height=height,
        out_width=out_w,
        out_height=out_h,
        pad_top=pad(-top),
        pad_right=pad(left + width - image_w),
        pad_bottom=pad(top + height - image_h),
        pad_left=pad(-left),
    )


def head_placement(crown: float, chin: float, image_height: int, rules: HeadRules) -> tuple[float, float]:
    """(head ratio, crown margin) to use: the rules' targets, or as close as the image's bottom edge allows.

    When the ideal crop would reach below the image, both move together from their targets towards the
    top of their bands (a larger head and more room above it), just far enough for the crop to end at the
    bottom edge; past the band tops they keep moving along the same line.
    """
    head = chin - crown
    if head <= 0:
        raise ValueError(f"the chin ({chin}) must lie below the crown ({crown})")
    room = (image_height - crown) / head  # source height from the crown down, in head heights
    ratio, margin = rules.head_ratio, rules.crown_margin
    if (1 - margin) / ratio <= room:
        return ratio, margin
    d_ratio, d_margin = rules.head_band[1] - ratio, rules.margin_band[1] - margin
    t = (1 - margin - room * ratio) / (d_margin + room * d_ratio)  # solves (1 - margin') / ratio' = room
    return ratio + t * d_ratio, margin + t * d_margin


def strict_placement(crown: float, chin: float, eyes: float | None, image_height: int,
                     rules: HeadRules) -> tuple[float, float]:  # fmt: skip
    """(head ratio, crown margin) inside every band of `rules`, the crop ending at or above the image's bottom
    edge and the eye line (row `eyes`) inside the eye band, as close to the targets as that allows;
    IdPhotoError(422) naming the rule that cannot be met."""
    head = chin - crown
    if head <= 0:
        raise ValueError(f"the chin ({chin}) must lie below the crown ({crown})")
    (h_lo, h_hi), (m_lo, m_hi) = rules.head_band, rules.margin_band
    best: tuple[float, float, float] | None = None
    fits_above_bottom = False
    for ratio in np.linspace(h_lo, h_hi, PLACEMENT_STEPS):
        height = head / ratio
        low, high = max(m_lo, (crown + height - image_height) / height), m_hi
        fits_above_bottom |= low <= high + 1e-12
        want, weight, eye_cost = rules.crown_margin, 1 / (m_hi - m_lo) ** 2, 0.0
        if rules.eye_band is not None and eyes is not None:
            (e_lo, e_hi), from_crown = rules.eye_band, (eyes - crown) / height
            low, high = max(low, 1 - e_hi - from_crown), min(high, 1 - e_lo - from_crown)
            # the margin that best balances its own target and the eye band's middle (eyes = 1 - margin - from_crown)
            eye_weight = 1 / (e_hi - e_lo) ** 2
            want = (weight * want + eye_weight * (1 - from_crown - (e_lo + e_hi) / 2)) / (weight + eye_weight)
        if low > high + 1e-12:
            continue
        margin = min(max(want, low), high)
        if rules.eye_band is not None and eyes is not None:
            eye_cost = ((1 - margin - from_crown - sum(rules.eye_band) / 2) / (e_hi - e_lo)) ** 2
        cost = (
            ((ratio - rules.head_ratio) / (h_hi - h_lo)) ** 2 + weight * (margin - rules.crown_margin) ** 2 + eye_cost
        )
        if best is None or cost < best[0]:
            best = (cost, float(ratio), margin)
    if best is not None:
        return best[1], best[2]
    if not fits_above_bottom:
        raise IdPhotoError(422, f"the photo ends too close below the chin: the head must be {h_lo:.0%}-{h_hi:.0%} "
                           f"of the photo's height with {m_lo:.0%}-{m_hi:.0%} above it; use a photo that shows "
                           "the shoulders")  # fmt: skip
    assert rules.eye_band is not None
    raise IdPhotoError(422, f"the eyes cannot be placed {rules.eye_band[0]:.0%}-{rules.eye_band[1]:.0%} of the "
                       f"height above the bottom with the head {h_lo:.0%}-{h_hi:.0%} of it: the eyes sit unusually "
                       "high or low in this face (or the crown is hidden)")  # fmt: skip


def plan_face_crop(
    image_size: tuple[int, int],
    face: FaceBox,
    crown: float,
    chin: float,
    target: tuple[int, int],
    rules: HeadRules = ID_RULES,
    eyes: float | None = None,
) -> CropPlan:
    """Crop with the head sized and placed by `rules` and the face centred horizontally.

    image_size and target are (width, height); `eyes` is the eye line's row, for rules with an eye band.
    Raises IdPhotoError(422) when strict rules cannot be met, or when the crop would need more than 2x
    upscaling.
    """
    if rules.strict or rules.eye_band is not None:
        ratio, margin = strict_placement(crown, chin, eyes, image_size[1], rules)
    else:
        ratio, margin = head_placement(crown, chin, image_size[1], rules)
    height = (chin - crown) / ratio
    top = min(crown - margin * height, image_size[1] - height)  # min() only absorbs float rounding
    width = height * target[0] / target[1]
    return _plan(face.cx - width / 2, top, height, target, image_size)


def plan_fit(image_size: tuple[int, int], target: tuple[int, int]) -> CropPlan:
    """The whole image scaled to fit the target, centred horizontally and resting on the bottom edge."""
    image_w, image_h = image_size
    height = max(image_h, image_w * target[1] / target[0])
    width = height * target[0] / target[1]
    return _plan((image_w - width) / 2, image_h - height, height, target, image_size)


def render(array: np.ndarray, plan: CropPlan) -> np.ndarray:
    """Resample `array` (H x W or H x W x C) into the plan's output.

    Outside the image the result is 0 (top, left, right); at the bottom edge the last row is repeated so
    rounding never blends the bottom row with the border.
    """
    image_h, image_w = array.shape[:2]
    scale = plan.scale
    margin = 2 + math.ceil(1 / scale)  # source pixels kept around the crop for interpolation
    x0 = max(0, math.floor(plan.left) - margin)
    y0 = max(0, math.floor(plan.top) - margin)
    x1 = min(image_w, math.ceil(plan.left + plan.width) + margin)
    y1 = min(image_h, math.ceil(plan.top + plan.height) + margin)
    region = array[y0:y1, x0:x1]
    if y1 == image_h:
        region = cv2.copyMakeBorder(region, 0, 2, 0, 0, cv2.BORDER_REPLICATE)
    fx = fy = 1.0
    if scale < 1:  # area-average first so downscaling does not alias; the affine map keeps the scale exact
        rh, rw = region.shape[:2]
        small = (max(1, round(rw * scale)), max(1, round(rh * scale)))
        region = cv2.resize(region, small, interpolation=cv2.INTER_AREA)
        fx, fy = small[0] / rw, small[1] / rh
    # Pixel centres: output x + 0.5 = (source x + 0.5 - left) * scale, source x + 0.5 = (region x + 0.5) / fx + x0
    ax, ay = scale / fx, scale / fy
    matrix = np.array(
        [
            [ax, 0.0, 0.5 * ax + (x0 - plan.left) * scale - 0.5],
            [0.0, ay, 0.5 * ay + (y0 - plan.top) * scale - 0.5],
        ]
    )
    return cv2.warpAffine(
        region,
        matrix,
        (plan.out_width, plan.out_height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
