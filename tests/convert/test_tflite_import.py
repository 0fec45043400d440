"""TFLite -> Paddle importer: parity with the real TFLite runtime (LiteRT), clear errors, and portrait's sha256 check.

Every Paddle result comes from Paddle Inference's default CPU config (oneDNN on, IR optimisation on).
"""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import paddle
import pytest
import tflite
import tflite_builder as tb
from skimage import color, data

from convert.portrait import DEPLOY_YAML, TFLITE_MEMBER, TFLITE_SHA256, main, read_wheel, write_export_dir
from convert.tflite_import import build_layer, import_tflite, read_tflite
from segcore.deploy_yaml import read_deploy_yaml

litert = pytest.importorskip("ai_edge_litert.interpreter")
paddle_inference = pytest.importorskip("paddle.inference")

ROOT = Path(__file__).resolve().parents[2]
SELFIE = ROOT / "serving_models" / "portrait" / "source" / "selfie_segmentation.tflite"


def mediapipe_input(rgb: np.ndarray) -> np.ndarray:
    """MediaPipe's CPU preprocessing: warpAffine scale to 256x256 (no half-pixel offset), then / 255 -> NHWC."""
    h, w = rgb.shape[:2]
    m = np.array([[256 / w, 0, 0], [0, 256 / h, 0]], dtype=np.float64)
    x = cv2.warpAffine(rgb, m, (256, 256), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return (x.astype(np.float32) / 255.0)[None]


def run_litert(model: bytes, x_nhwc: np.ndarray) -> np.ndarray:
    interp = litert.Interpreter(model_content=model)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x_nhwc)
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"]).transpose(0, 3, 1, 2)


def paddle_runner(export_dir: Path) -> Callable[[np.ndarray], np.ndarray]:
    """A Paddle Inference predictor with the default CPU config (2 threads), taking NCHW batches."""
    config = paddle_inference.Config(str(export_dir / "model.json"), str(export_dir / "model.pdiparams"))
    config.set_cpu_math_library_num_threads(2)
    config.disable_glog_info()
    predictor = paddle_inference.create_predictor(config)
    assert predictor.get_input_names() == ["image"]

    def run(x_nchw: np.ndarray) -> np.ndarray:
        handle = predictor.get_input_handle("image")
        handle.reshape(list(x_nchw.shape))
        handle.copy_from_cpu(np.ascontiguousarray(x_nchw, dtype=np.float32))
        predictor.run()
        return predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()

    return run


def import_and_run(tmp_path: Path, model: bytes, x_nhwc: np.ndarray, exact_resize: bool = True) -> np.ndarray:
    (tmp_path / "m.tflite").write_bytes(model)
    import_tflite(tmp_path / "m.tflite", tmp_path / "export", exact_resize=exact_resize)
    return paddle_runner(tmp_path / "export")(x_nhwc.transpose(0, 3, 1, 2))


# --- the real model ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=[True, False], ids=["exact_resize", "interpolate"])
def selfie(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Callable]:
    assert SELFIE.is_file(), f"{SELFIE} is missing; run python -m convert.portrait"
    export = write_export_dir(SELFIE, tmp_path_factory.mktemp("selfie") / "export", exact_resize=request.param)
    return export, paddle_runner(export)


@pytest.mark.slow
@pytest.mark.parametrize("image", ["astronaut", "camera"])
def test_selfie_matches_litert(selfie: tuple[Path, Callable], image: str) -> None:
    rgb = data.astronaut() if image == "astronaut" else color.gray2rgb(data.camera())
    x = mediapipe_input(rgb)
    ref = run_litert(SELFIE.read_bytes(), x)
    out = selfie[1](x.transpose(0, 3, 1, 2))
    assert out.shape == (1, 1, 256, 256) and out.dtype == np.float32
    assert np.abs(out - ref).max() <= 2e-4
    a, b = ref > 0.5, out > 0.5
    assert a.mean() > 0.1  # the image does contain a person-like foreground
    assert (a & b).sum() / (a | b).sum() >= 0.999


@pytest.mark.slow
def test_selfie_dynamic_batch_and_export_dir(selfie: tuple[Path, Callable]) -> None:
    export, run = selfie
    xs = np.concatenate([mediapipe_input(data.astronaut()), mediapipe_input(color.gray2rgb(data.camera()))])
    both = run(xs.transpose(0, 3, 1, 2))
    assert both.shape == (2, 1, 256, 256)
    for i in range(2):
        np.testing.assert_allclose(both[i : i + 1], run(xs[i : i + 1].transpose(0, 3, 1, 2)), atol=1e-6)
    assert (export / "deploy.yaml").read_text() == DEPLOY_YAML
    deploy = read_deploy_yaml(export / "deploy.yaml")
    assert deploy.output_op == "sigmoid" and deploy.class_names == ["background", "person"]
    assert deploy.input_shape == [None, 3, 256, 256]


def test_selfie_graph_is_what_we_expect() -> None:
    graph = read_tflite(SELFIE)
    types = {op.type for op in graph.ops}
    assert "DEQUANTIZE" not in types  # fp16 weights were folded into float32 constants
    assert len(graph.ops) == 136 and "CUSTOM:Convolution2DTransposeBias" in types
    custom = next(op for op in graph.ops if op.type.startswith("CUSTOM:"))
    assert custom.options == {"padding": "SAME", "stride": (2, 2)}
    assert graph.tensors[custom.inputs[1]].data.dtype == np.float32


# --- tiny models built at test time -----------------------------------------------------------------------------


def _rand(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def _conv_stack_model(rng: np.random.Generator) -> tuple[bytes, tuple[int, ...]]:
    """CONV_2D (SAME, stride 2, odd size, RELU6) -> DEPTHWISE (x2 multiplier, dilation 2) -> AVG_POOL (SAME)
    -> ADD const -> MUL const -> HARD_SWISH -> Convolution2DTransposeBias (SAME, stride 2) -> LOGISTIC."""
    fp16 = rng.standard_normal((6, 3, 3, 4)).astype(np.float16)
    tensors = [
        tb.T("in", (1, 9, 11, 4)),
        tb.const("w0_fp16", fp16),
        tb.T("w0", fp16.shape),
        tb.const("b0", _rand(rng, 6)),
        tb.T("c0", (1, 5, 6, 6)),
        tb.const("w1", _rand(rng, 1, 3, 3, 12)),
        tb.const("b1", _rand(rng, 12)),
        tb.T("c1", (1, 5, 6, 12)),
        tb.T("p", (1, 3, 3, 12)),
        tb.const("k_add", _rand(rng, 12)),
        tb.T("a", (1, 3, 3, 12)),
        tb.const("k_mul", _rand(rng, 1, 1, 1, 12)),
        tb.T("m", (1, 3, 3, 12)),
        tb.T("h", (1, 3, 3, 12)),
        tb.const("w2", _rand(rng, 2, 3, 3, 12)),
        tb.const("b2", _rand(rng, 2)),
        tb.T("u", (1, 6, 6, 2)),
        tb.T("out", (1, 6, 6, 2)),
    ]
    same, relu6 = tflite.Padding.SAME, tflite.ActivationFunctionType.RELU6
    conv = {"Padding": same, "StrideW": 2, "StrideH": 2, "FusedActivationFunction": relu6}
    dw = {"Padding": same, "StrideW": 1, "StrideH": 1, "DepthMultiplier": 2, "DilationWFactor": 2}
    dw["DilationHFactor"] = 2
    pool = {"Padding": same, "StrideW": 2, "StrideH": 2, "FilterWidth": 3, "FilterHeight": 3}
    ops = [
        tb.Op("DEQUANTIZE", [1], [2]),
        tb.Op("CONV_2D", [0, 2, 3], [4], ("Conv2DOptions", conv)),
        tb.Op("DEPTHWISE_CONV_2D", [4, 5, 6], [7], ("DepthwiseConv2DOptions", dw)),
        tb.Op("AVERAGE_POOL_2D", [7], [8], ("Pool2DOptions", pool)),
        tb.Op("ADD", [8, 9], [10], ("AddOptions", {})),
        tb.Op("MUL", [11, 10], [12], ("MulOptions", {})),
        tb.Op("HARD_SWISH", [12], [13]),
        tb.Op("CUSTOM:Convolution2DTransposeBias", [13, 14, 15], [16], custom_options=struct.pack("<3i", 1, 2, 2)),
        tb.Op("LOGISTIC", [16], [17]),
    ]
    return tb.build(tensors, ops, [0], [17]), (1, 9, 11, 4)


def test_tiny_conv_stack_matches_litert(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    model, shape = _conv_stack_model(rng)
    x = rng.random(shape, dtype=np.float32)
    np.testing.assert_allclose(import_and_run(tmp_path, model, x), run_litert(model, x), atol=2e-5)


def _resize_model(in_hw: tuple[int, int], out_hw: tuple[int, int], align: bool, half: bool) -> bytes:
    tensors = [
        tb.T("in", (1, *in_hw, 3)),
        tb.const("size", np.asarray(out_hw, dtype=np.int32)),
        tb.T("out", (1, *out_hw, 3)),
    ]
    opts = ("ResizeBilinearOptions", {"AlignCorners": align, "HalfPixelCenters": half})
    return tb.build(tensors, [tb.Op("RESIZE_BILINEAR", [0, 1], [2], opts)], [0], [2])


@pytest.mark.parametrize(
    ("out_hw", "align", "half"),
    [
        ((10, 12), False, True),
        ((10, 12), False, False),
        ((15, 18), False, True),
        ((8, 9), False, True),
        ((3, 4), False, True),
        ((7, 9), True, False),
    ],
    ids=["2x_half_pixel", "2x_asymmetric", "3x_half_pixel", "fractional", "downscale", "align_corners"],
)
@pytest.mark.parametrize("exact", [True, False], ids=["exact", "interpolate"])
@pytest.mark.filterwarnings("ignore:no variable in your model")
def test_tiny_resize_matches_litert(
    tmp_path: Path, out_hw: tuple[int, int], align: bool, half: bool, exact: bool
) -> None:
    model = _resize_model((5, 6), out_hw, align, half)
    x = np.random.default_rng(1).random((1, 5, 6, 3), dtype=np.float32)
    np.testing.assert_allclose(import_and_run(tmp_path, model, x, exact), run_litert(model, x), atol=1e-5)


def test_unsupported_op_is_named(tmp_path: Path) -> None:
    tensors = [tb.T("in", (1, 4, 4, 3)), tb.T("sq", (1, 4, 4, 3)), tb.T("out", (1, 4, 4, 3))]
    ops = [tb.Op("SQUARE", [0], [1]), tb.Op("RELU", [1], [2])]
    model = tb.build(tensors, ops, [0], [2])
    x = np.ones((1, 4, 4, 3), dtype=np.float32)
    np.testing.assert_allclose(run_litert(model, x), 1.0)  # a valid model, just not one we can import
    (tmp_path / "sq.tflite").write_bytes(model)
    with pytest.raises(ValueError, match=r"unsupported TFLite op type\(s\): SQUARE \(op #0\)"):
        import_tflite(tmp_path / "sq.tflite", tmp_path / "export")
    assert not (tmp_path / "export").exists()


def test_bad_custom_options_are_refused(tmp_path: Path) -> None:
    tensors = [tb.T("in", (1, 2, 2, 1)), tb.const("w", np.ones((1, 2, 2, 1), np.float32)), tb.T("out", (1, 4, 4, 1))]
    op = tb.Op("CUSTOM:Convolution2DTransposeBias", [0, 1, -1], [2], custom_options=b"\x01\x00\x00\x00")
    (tmp_path / "m.tflite").write_bytes(tb.build(tensors, [op], [0], [2]))
    with pytest.raises(ValueError, match="expected 12 option bytes"):
        read_tflite(tmp_path / "m.tflite")


# --- portrait: the source wheel must hold the exact model -------------------------------------------------------


def _fake_wheel(path: Path, tflite_bytes: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(TFLITE_MEMBER, tflite_bytes)
        zf.writestr("mediapipe-0.10.21.dist-info/LICENSE", "Apache License\nVersion 2.0, January 2004\n")
    return path


def test_sha256_mismatch_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wheel = _fake_wheel(tmp_path / "mediapipe-0.10.21-py3-none-any.whl", b"TFL3 but not the selfie model")
    with pytest.raises(ValueError, match=f"sha256 mismatch .* expected {TFLITE_SHA256}, got "):
        read_wheel(wheel)
    out = tmp_path / "portrait"
    assert main(["--wheel", str(wheel), "--out", str(out)]) == 1
    assert "error: sha256 mismatch" in capsys.readouterr().err
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == [wheel.name]


def test_wheel_with_the_right_model_is_accepted(tmp_path: Path) -> None:
    src = read_wheel(_fake_wheel(tmp_path / "mediapipe-0.10.21-py3-none-any.whl", SELFIE.read_bytes()))
    assert src.sha256 == TFLITE_SHA256 and src.version == "0.10.21"
    assert src.license_text.startswith("Apache License")


def _detector_ops_model(rng: np.random.Generator) -> bytes:
    """The ops of MediaPipe's face models beside the segmentation ones, with two outputs as a detector has:
    CONV_2D -> PRELU -> PAD (channels) -> MAX_POOL_2D; both RESHAPEd to [1, n, 6] and CONCATENATED on axis 1
    (output 0), and the pooled map itself (output 1, 4-D)."""
    tensors = [
        tb.T("in", (1, 8, 8, 3)),
        tb.const("w", _rand(rng, 4, 3, 3, 3)),
        tb.const("b", _rand(rng, 4)),
        tb.T("c", (1, 8, 8, 4)),
        tb.const("slope", _rand(rng, 1, 1, 4)),
        tb.T("r", (1, 8, 8, 4)),
        tb.const("pads", np.array([[0, 0], [0, 0], [0, 0], [0, 2]], np.int32)),
        tb.T("padded", (1, 8, 8, 6)),
        tb.T("pooled", (1, 4, 4, 6)),
        tb.T("flat_pooled", (1, 16, 6)),
        tb.T("flat_padded", (1, 64, 6)),
        tb.T("joined", (1, 80, 6)),
        tb.const("shape_pooled", np.array([1, 16, 6], np.int32)),
        tb.const("shape_padded", np.array([1, -1, 6], np.int32)),
    ]
    same, valid = tflite.Padding.SAME, tflite.Padding.VALID
    pool = {"Padding": valid, "StrideW": 2, "StrideH": 2, "FilterWidth": 2, "FilterHeight": 2}
    ops = [
        tb.Op("CONV_2D", [0, 1, 2], [3], ("Conv2DOptions", {"Padding": same, "StrideW": 1, "StrideH": 1})),
        tb.Op("PRELU", [3, 4], [5]),
        tb.Op("PAD", [5, 6], [7]),
        tb.Op("MAX_POOL_2D", [7], [8], ("Pool2DOptions", pool)),
        tb.Op("RESHAPE", [8, 12], [9]),
        tb.Op("RESHAPE", [7, 13], [10]),
        tb.Op("CONCATENATION", [9, 10], [11], ("ConcatenationOptions", {"Axis": 1})),
    ]
    return tb.build(tensors, ops, [0], [11, 8])


def test_tiny_detector_ops_with_two_outputs_match_litert(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    model = _detector_ops_model(rng)
    (tmp_path / "m.tflite").write_bytes(model)
    x = rng.standard_normal((1, 8, 8, 3)).astype(np.float32)
    joined, pooled = build_layer(tmp_path / "m.tflite")(paddle.to_tensor(x.transpose(0, 3, 1, 2)))
    interp = litert.Interpreter(model_content=model)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    expected = [interp.get_tensor(d["index"]) for d in interp.get_output_details()]
    assert joined.shape == [1, 80, 6] and pooled.shape == [1, 6, 4, 4]  # 3-D as TFLite has it, 4-D as NCHW
    np.testing.assert_allclose(joined.numpy(), expected[0], atol=1e-5)
    np.testing.assert_allclose(pooled.numpy(), expected[1].transpose(0, 3, 1, 2), atol=1e-5)
    assert (joined.numpy()[0, 16:].reshape(8, 8, 6)[..., 4:] == 0).all()  # the padded channels
