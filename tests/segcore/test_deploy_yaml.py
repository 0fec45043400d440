"""segcore.deploy_yaml: the literal deploy.yaml files of paddleseg-deploy.md 1.5 and the errors we promise."""

from __future__ import annotations

from pathlib import Path

import pytest

from segcore.deploy_yaml import read_deploy_yaml
from segcore.transforms import Normalize, Resize, ResizeByLong, ResizeByShort

PPLITESEG_NULL = """\
Deploy:
  input_shape:
  - null
  - 3
  - null
  - null
  model: model.pdmodel
  output_dtype: int32
  output_op: argmax
  params: model.pdiparams
  transforms:
  - type: Normalize
"""

PPLITESEG_MINUS_ONE = """\
Deploy:
  input_shape:
  - -1
  - 3
  - -1
  - -1
  model: model.pdmodel
  output_dtype: int32
  output_op: argmax
  params: model.pdiparams
  transforms:
  - type: Normalize
"""

HUMANSEG_SOFTMAX = """\
Deploy:
  input_shape:
  - null
  - 3
  - null
  - null
  model: model.pdmodel
  output_dtype: float32
  output_op: softmax
  params: model.pdiparams
  transforms:
  - target_size:
    - 256
    - 144
    type: Resize
  - type: Normalize
"""

HUMANSEG_V26 = """\
Deploy:
  model: model.pdmodel
  params: model.pdiparams
  transforms:
  - target_size:
    - 256
    - 144
    type: Resize
  - type: Normalize
"""

LEGACY_0X = """\
DEPLOY:
    USE_GPU : 1
    USE_PR : 0
    MODEL_PATH : "freeze_model"
    MODEL_FILENAME : "__model__"
    PARAMS_FILENAME : "__params__"
    EVAL_CROP_SIZE : (2049, 1025)
    MEAN : [0.5, 0.5, 0.5]
    STD : [0.5, 0.5, 0.5]
    IMAGE_TYPE : "rgb"
    NUM_CLASSES : 19
    CHANNELS : 3
    PRE_PROCESSOR : "SegPreProcessor"
    PREDICTOR_MODE : "ANALYSIS"
    BATCH_SIZE : 1
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "deploy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("text", [PPLITESEG_NULL, PPLITESEG_MINUS_ONE], ids=["null", "minus_one"])
def test_pp_liteseg_argmax(tmp_path: Path, text):
    info = read_deploy_yaml(_write(tmp_path, text))
    # null and -1 both mean a dynamic dim.
    assert info.input_shape == [None, 3, None, None]
    assert info.output_op == "argmax"
    assert info.model == "model.pdmodel"
    assert info.params == "model.pdiparams"
    assert info.class_names is None
    assert info.preprocess.transforms == [Normalize()]
    assert info.preprocess.to_rgb is True


def test_humanseg_softmax_resize(tmp_path: Path):
    info = read_deploy_yaml(_write(tmp_path, HUMANSEG_SOFTMAX))
    assert info.output_op == "softmax"
    # target_size is [w, h]: 256 wide x 144 high.
    assert info.preprocess.transforms == [Resize(target_size=(256, 144)), Normalize()]
    assert info.preprocess.transforms[0].output_size(720, 1280) == (256, 144)


def test_v26_three_key_file_has_no_output_op(tmp_path: Path):
    info = read_deploy_yaml(_write(tmp_path, HUMANSEG_V26))
    assert info.output_op is None
    assert info.input_shape is None
    assert (info.model, info.params) == ("model.pdmodel", "model.pdiparams")
    assert info.preprocess.transforms == [Resize(target_size=(256, 144)), Normalize()]


@pytest.mark.parametrize(
    ("flags", "op"),
    [
        ("with_argmax: true\n  with_softmax: false", "argmax"),
        ("with_argmax: true\n  with_softmax: true", "argmax"),
        ("with_argmax: false\n  with_softmax: true", "softmax"),
        ("with_argmax: false\n  with_softmax: false", "none"),
    ],
)
def test_develop_branch_with_argmax_with_softmax_schema(tmp_path: Path, flags, op):
    text = f"Deploy:\n  model: model.pdmodel\n  params: model.pdiparams\n  {flags}\n  input_shape: [-1, 3, 512, 512]\n"
    text += "  transforms:\n  - type: Normalize\n"
    info = read_deploy_yaml(_write(tmp_path, text))
    assert info.output_op == op
    assert info.input_shape == [None, 3, 512, 512]


def test_output_op_wins_over_legacy_flags(tmp_path: Path):
    text = "Deploy:\n  output_op: none\n  with_argmax: true\n  transforms:\n  - type: Normalize\n"
    assert read_deploy_yaml(_write(tmp_path, text)).output_op == "none"


def test_resize_by_short_and_normalize_with_mean_std(tmp_path: Path):
    text = """\
Deploy:
  model: model.pdmodel
  params: model.pdiparams
  transforms:
  - short_size: 512
    type: ResizeByShort
  - mean: [0.485, 0.456, 0.406]
    std: [0.229, 0.224, 0.225]
    type: Normalize
  - long_size: 1280
    type: ResizeByLong
"""
    info = read_deploy_yaml(_write(tmp_path, text))
    assert info.preprocess.transforms == [
        ResizeByShort(short_size=512),
        Normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
        ResizeByLong(long_size=1280),
    ]


def test_legacy_deploy_rejected_with_reason(tmp_path: Path):
    with pytest.raises(ValueError, match=r"PaddleSeg 0\.x 'DEPLOY:' config.*re-export with PaddleSeg >= 2\.0"):
        read_deploy_yaml(_write(tmp_path, LEGACY_0X))


def test_unknown_transform_named_with_index(tmp_path: Path):
    text = "Deploy:\n  transforms:\n  - type: Normalize\n  - type: ResizeToIntMult\n    mult_int: 32\n"
    with pytest.raises(ValueError, match=r"transform #1: unknown transform type 'ResizeToIntMult'"):
        read_deploy_yaml(_write(tmp_path, text))


def test_bad_transform_args_named_with_index_and_type(tmp_path: Path):
    text = "Deploy:\n  transforms:\n  - type: Resize\n    target_size: [512, 512]\n    interp: RANDOM\n"
    with pytest.raises(ValueError, match=r"transform #0 \(Resize\): .*RANDOM") as exc:
        read_deploy_yaml(_write(tmp_path, text))
    assert "\n" not in str(exc.value)


def test_transform_entry_not_a_mapping(tmp_path: Path):
    text = "Deploy:\n  transforms:\n  - Normalize\n"
    with pytest.raises(ValueError, match=r"transform #0: transform entry must be a mapping"):
        read_deploy_yaml(_write(tmp_path, text))


def test_transforms_not_a_list(tmp_path: Path):
    text = "Deploy:\n  transforms:\n    type: Normalize\n"
    with pytest.raises(ValueError, match=r"Deploy\.transforms must be a list"):
        read_deploy_yaml(_write(tmp_path, text))


@pytest.mark.parametrize(
    "text", ["", "- 1\n- 2\n", "Model: x\n", "Deploy: model.pdmodel\n"], ids=["empty", "list", "no_deploy", "scalar"]
)
def test_missing_deploy_mapping(tmp_path: Path, text):
    with pytest.raises(ValueError, match="no top-level 'Deploy:' mapping"):
        read_deploy_yaml(_write(tmp_path, text))


def test_unparsable_yaml(tmp_path: Path):
    with pytest.raises(ValueError, match=r"cannot read deploy\.yaml"):
        read_deploy_yaml(_write(tmp_path, "Deploy: [unclosed\n"))


def test_missing_file(tmp_path: Path):
    with pytest.raises(ValueError, match=r"cannot read deploy\.yaml"):
        read_deploy_yaml(tmp_path / "nope.yaml")


def test_class_names(tmp_path: Path):
    text = "Deploy:\n  class_names: [background, person]\n"
    assert read_deploy_yaml(_write(tmp_path, text)).class_names == ["background", "person"]


@pytest.mark.parametrize("value", ["person", "[1, 2]", "{a: b}"])
def test_class_names_validated(tmp_path: Path, value):
    with pytest.raises(ValueError, match="class_names must be a list of strings"):
        read_deploy_yaml(_write(tmp_path, f"Deploy:\n  class_names: {value}\n"))


def test_bad_output_op(tmp_path: Path):
    with pytest.raises(ValueError, match=r"Deploy\.output_op 'logits' is not one of argmax, softmax, none, sigmoid"):
        read_deploy_yaml(_write(tmp_path, "Deploy:\n  output_op: logits\n"))


@pytest.mark.parametrize("value", ["512", "[a, 3]", "[1.5, 3]"])
def test_bad_input_shape(tmp_path: Path, value):
    with pytest.raises(ValueError, match="input_shape must be a list of ints or nulls"):
        read_deploy_yaml(_write(tmp_path, f"Deploy:\n  input_shape: {value}\n"))


@pytest.mark.parametrize("transforms", ["", "  transforms:\n", "  transforms: []\n"], ids=["absent", "null", "empty"])
def test_missing_transforms_default_to_normalize(tmp_path: Path, transforms):
    info = read_deploy_yaml(_write(tmp_path, "Deploy:\n  model: m.json\n" + transforms))
    assert info.preprocess.transforms == [Normalize()]
    assert info.model == "m.json"
    assert info.params is None
    assert info.output_op is None


def test_pixel_dtype_defaults_to_paddleseg_float32_and_accepts_uint8(tmp_path: Path):
    assert read_deploy_yaml(_write(tmp_path, PPLITESEG_NULL)).preprocess.pixel_dtype == "float32"
    text = "Deploy:\n  pixel_dtype: uint8\n  transforms:\n  - type: Normalize\n"
    assert read_deploy_yaml(_write(tmp_path, text)).preprocess.pixel_dtype == "uint8"
    with pytest.raises(ValueError, match=r"Deploy\.pixel_dtype must be float32 or uint8, got 'float16'"):
        read_deploy_yaml(_write(tmp_path, "Deploy:\n  pixel_dtype: float16\n  transforms: []\n"))
