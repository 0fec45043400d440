"""segcore.modelconfig: segserving.yaml save/load."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from segcore.modelconfig import (
    CONFIG_NAME,
    ModelConfig,
    ModelFiles,
    OnnxCheck,
    OnnxInfo,
    Postprocess,
    Preprocess,
)
from segcore.transforms import LimitLong, Normalize, Padding, Resize, ResizeByLong, ResizeByShort


def _full_config() -> ModelConfig:
    return ModelConfig(
        name="pp_liteseg",
        files=ModelFiles(model_file="model.json", params_file="model.pdiparams", format="pir"),
        input_name="x",
        input_shape=[None, 3, 512, 1024],
        preprocess=Preprocess(
            to_rgb=True,
            transforms=[
                Resize(target_size=(256, 144), interp="NEAREST", pixel_center="corner"),
                ResizeByShort(short_size=100, max_size=120),
                ResizeByLong(long_size=64),
                LimitLong(max_long=80, min_long=10),
                Padding(target_size=(512, 512), im_padding_value=(1.0, 2.0, 3.5)),
                Normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
            ],
        ),
        postprocess=Postprocess(
            output_name="fetch_name_0", output_op="softmax", num_classes=2, class_names=["bg", "fg"]
        ),
        onnx=OnnxInfo(
            file="model.onnx",
            opset=17,
            input_names=["x"],
            output_names=["out"],
            check=OnnxCheck(passed=True, sample_shape=[1, 3, 64, 64], max_abs_diff=1e-5, tolerance=1e-4),
        ),
        source={"paddleseg": "2.10", "deploy_yaml": "deploy.yaml"},
    )


def test_save_load_round_trip(tmp_path: Path):
    config = _full_config()
    path = config.save(tmp_path)
    assert path == tmp_path / CONFIG_NAME
    assert CONFIG_NAME == "segserving.yaml"
    loaded = ModelConfig.load(tmp_path)
    assert loaded == config
    assert loaded.preprocess.transforms[0].target_size == (256, 144)
    assert isinstance(loaded.preprocess.transforms[4], Padding)
    assert loaded.preprocess.transforms[4].im_padding_value == (1.0, 2.0, 3.5)


def test_saved_file_is_plain_yaml_without_nones(tmp_path: Path):
    config = ModelConfig(
        name="tensors_only",
        files=ModelFiles(model_file="model.pdmodel", params_file="model.pdiparams", format="legacy"),
        input_name="x",
    )
    path = config.save(tmp_path)
    data = yaml.safe_load(path.read_text())
    # exclude_none: unset optional parts are absent rather than null.
    assert data == {
        "version": 1,
        "name": "tensors_only",
        "files": {"model_file": "model.pdmodel", "params_file": "model.pdiparams", "format": "legacy"},
        "input_name": "x",
        "output_shapes": {},
        "source": {},
    }
    loaded = ModelConfig.load(tmp_path)
    assert loaded == config
    assert loaded.preprocess is None and loaded.postprocess is None and loaded.onnx is None


def test_preprocess_defaults():
    assert Preprocess() == Preprocess(to_rgb=True, transforms=[])


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("name: m\ninput_name: x\n", "files: Field required"),
        (
            "name: m\ninput_name: x\nfiles: {model_file: a, params_file: b, format: onnx}\n",
            "files.format",
        ),
        (
            "name: m\ninput_name: x\nfiles: {model_file: a, params_file: b, format: pir}\nextra_key: 1\n",
            "extra_key: Extra inputs are not permitted",
        ),
        (
            "name: m\ninput_name: x\nfiles: {model_file: a, params_file: b, format: pir}\n"
            "preprocess:\n  transforms:\n  - type: Resize\n    interp: RANDOM\n",
            "RANDOM",
        ),
        ("name: [unclosed\n", "invalid SegServing model config"),
        ("", "invalid SegServing model config"),
    ],
    ids=["missing", "bad_literal", "extra", "bad_transform", "bad_yaml", "empty"],
)
def test_invalid_file_is_one_line_value_error(tmp_path: Path, text, needle):
    (tmp_path / CONFIG_NAME).write_text(text)
    with pytest.raises(ValueError) as exc:
        ModelConfig.load(tmp_path)
    message = str(exc.value)
    assert needle in message
    assert message.startswith(f"{tmp_path / CONFIG_NAME}: invalid SegServing model config: ")
    assert "\n" not in message
