"""SegServing's deploy.yaml transforms against PaddleSeg 2.8's own, op by op: same tensor, same way back."""

from __future__ import annotations

import copy
from typing import Any

import cv2
import numpy as np
import pytest

pytest.importorskip("paddleseg", reason="needs paddleseg 2.8.0 (./scripts/test installs it)")
import paddle
import yaml
from paddleseg.core.infer import reverse_transform as paddleseg_reverse
from paddleseg.deploy.infer import DeployConfig

from segcore.deploy_yaml import read_deploy_yaml
from segcore.postprocess import reverse_transform
from segcore.preprocess import Preprocessor

IMAGE_NET = {"type": "Normalize", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
PIPELINES: dict[str, list[dict[str, Any]]] = {
    "normalize_only": [{"type": "Normalize"}],
    "resize": [{"type": "Resize", "target_size": [512, 512]}, {"type": "Normalize"}],
    **{
        f"resize_{interp.lower()}": [{"type": "Resize", "target_size": [256, 144], "interp": interp}, IMAGE_NET]
        for interp in ("NEAREST", "CUBIC", "AREA", "LANCZOS4")
    },
    "resize_keep_ratio_divisor": [
        {"type": "Resize", "target_size": [512, 384], "keep_ratio": True, "size_divisor": 32}, {"type": "Normalize"}
    ],
    "resize_by_short_capped": [{"type": "ResizeByShort", "short_size": 256, "max_size": 448}, IMAGE_NET],
    "resize_by_short": [{"type": "ResizeByShort", "short_size": 300}, {"type": "Normalize"}],
    "resize_by_long": [{"type": "ResizeByLong", "long_size": 300}, {"type": "Normalize"}],
    "limit_long_padding": [
        {"type": "LimitLong", "max_long": 400, "min_long": 200},
        {"type": "Padding", "target_size": [400, 400], "im_padding_value": 0}, {"type": "Normalize"},
    ],
    "padding_by_aspect_ratio": [{"type": "PaddingByAspectRatio", "aspect_ratio": 1.5}, {"type": "Normalize"}],
    "square_then_resize": [
        {"type": "PaddingByAspectRatio"}, {"type": "Resize", "target_size": [192, 192]}, {"type": "Normalize"}
    ],
}  # fmt: skip
SIZES = ((1280, 720), (333, 517), (97, 143), (400, 400))


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[int, int], Any]:
    folder = tmp_path_factory.mktemp("transform-photos")
    rng = np.random.default_rng(3)
    out = {}
    for w, h in SIZES:
        image = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 2)  # smooth + detail
        path = folder / f"{w}x{h}.png"
        cv2.imwrite(str(path), image)
        out[w, h] = path
    return out


def _ours(tmp_path: Any, transforms: list[dict[str, Any]]) -> Preprocessor:
    """SegServing's preprocessing read from a deploy.yaml with these transforms, as the converter reads it."""
    path = tmp_path / "deploy.yaml"
    path.write_text(yaml.safe_dump({"Deploy": {"transforms": copy.deepcopy(transforms)}}))
    return Preprocessor(read_deploy_yaml(path).preprocess)


@pytest.mark.parametrize("pipeline", sorted(PIPELINES))
def test_tensor_and_reverse_transform_match_paddleseg(tmp_path: Any, photos: dict, pipeline: str) -> None:
    ours = _ours(tmp_path, PIPELINES[pipeline])
    for (w, h), path in photos.items():
        tensor, trans_info = ours(cv2.imread(str(path)))
        data = DeployConfig.load_transforms(copy.deepcopy(PIPELINES[pipeline]))({"img": str(path)})
        expected = data["img"]
        assert tensor.shape == expected.shape, (pipeline, (w, h))
        assert float(np.max(np.abs(tensor - expected))) <= 1e-5, (pipeline, (w, h))
        # Back to the photo: a label map by nearest, class maps by bilinear, as PaddleSeg's reverse_transform.
        net_h, net_w = tensor.shape[1:]
        labels = np.random.default_rng(w).integers(0, 5, (net_h, net_w)).astype(np.int32)
        theirs_labels = paddleseg_reverse(paddle.to_tensor(labels[None, None]), data["trans_info"], mode="nearest")
        ours_labels = reverse_transform(labels.astype(np.uint8), trans_info, cv2.INTER_NEAREST)
        assert ours_labels.shape == (h, w)
        assert np.array_equal(ours_labels, theirs_labels.numpy()[0, 0]), (pipeline, (w, h))
        maps = np.random.default_rng(h).random((net_h, net_w, 2), dtype=np.float32)
        theirs_maps = paddleseg_reverse(paddle.to_tensor(maps.transpose(2, 0, 1)[None]), data["trans_info"], "bilinear")
        ours_maps = reverse_transform(maps, trans_info, cv2.INTER_LINEAR)
        assert float(np.max(np.abs(ours_maps.transpose(2, 0, 1) - theirs_maps.numpy()[0]))) <= 1e-4, pipeline


def test_resize_by_short_is_per_image_where_paddleseg_remembers(tmp_path: Any, photos: dict) -> None:
    """PaddleSeg lowers ResizeByShort.short_size for good after a capped image; ours answers per image, which
    is what PaddleSeg gives for that image on its own (docs/paddleseg-fidelity.md)."""
    transforms = PIPELINES["resize_by_short_capped"]
    ours = _ours(tmp_path, transforms)
    shared = DeployConfig.load_transforms(copy.deepcopy(transforms))
    shared({"img": str(photos[1280, 720])})  # caps short_size to int(448 / 1280 * 720) = 251, and keeps it
    remembered = shared({"img": str(photos[400, 400])})["img"]
    alone = DeployConfig.load_transforms(copy.deepcopy(transforms))({"img": str(photos[400, 400])})["img"]
    tensor, _ = ours(cv2.imread(str(photos[400, 400])))
    assert remembered.shape[1:] == (251, 251) and alone.shape[1:] == (256, 256)
    assert tensor.shape == alone.shape
