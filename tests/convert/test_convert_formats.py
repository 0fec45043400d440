"""python -m convert on every accepted input format, checked field by field."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import text_format
from helpers import run_convert

from segcore.engines import EngineOptions, create_engine
from segcore.modelconfig import ModelConfig
from segcore.pipeline import SegmentationPipeline
from segcore.proto.general_model_config_pb2 import GeneralModelConfig
from segcore.repository import load_spec


def parse_text(path: Path) -> GeneralModelConfig:
    return text_format.Parse(path.read_text(), GeneralModelConfig())


def parse_stream(path: Path) -> GeneralModelConfig:
    conf = GeneralModelConfig()
    conf.ParseFromString(path.read_bytes())
    return conf


def assert_conf_files_agree(entry: Path) -> GeneralModelConfig:
    """Text and stream forms decode to the same config, and server and client copies are identical."""
    server, client = entry / "serving_server", entry / "serving_client"
    text = parse_text(server / "serving_server_conf.prototxt")
    assert parse_stream(server / "serving_server_conf.stream.prototxt") == text
    assert parse_text(client / "serving_client_conf.prototxt") == text
    assert (client / "serving_client_conf.stream.prototxt").read_bytes() == (
        server / "serving_server_conf.stream.prototxt"
    ).read_bytes()
    return text


def test_pir_export_with_interpolate_and_deploy_yaml(converted: Callable[[str], Path]) -> None:
    entry = converted("pir_interp")
    server = entry / "serving_server"
    names = {p.name for p in server.iterdir()}
    assert {"model.json", "params.pdiparams", "segserving.yaml", "deploy.yaml", "model.onnx"} <= names
    conf = assert_conf_files_agree(entry)
    (feed,) = conf.feed_var
    assert (feed.name, feed.alias_name, feed.is_lod_tensor, feed.feed_type, list(feed.shape)) == (
        "x",
        "x",
        False,
        1,
        [3],
    )
    (fetch,) = conf.fetch_var
    assert (fetch.name, fetch.alias_name, fetch.fetch_type, list(fetch.shape)) == (
        "fetch_name_0",
        "fetch_name_0",
        2,
        [],
    )
    config = ModelConfig.load(server)
    assert config.name == "pir_interp"
    assert config.files.format == "pir"
    assert [t.type for t in config.preprocess.transforms] == ["Resize", "Normalize"]
    assert config.preprocess.transforms[0].target_size == (64, 48)
    assert config.postprocess.output_op == "argmax"
    assert config.postprocess.output_name == "fetch_name_0"
    assert config.onnx.check.passed and config.onnx.check.label_agreement == 1.0
    assert config.onnx.check.sample_shape == [2, 3, 48, 64]


@pytest.mark.parametrize("engine", ["paddle", "onnxruntime"])
def test_converted_dir_serves_whole_images_at_original_size(converted: Callable[[str], Path], engine: str) -> None:
    spec = load_spec(converted("pir_interp"))
    pipe = SegmentationPipeline(spec.config, create_engine(spec.server_dir, spec.config, engine, EngineOptions()))
    image = np.random.default_rng(3).integers(0, 255, (70, 100, 3), dtype=np.uint8)
    result = pipe.segment(image)
    assert result.label_map.shape == (70, 100)
    assert set(np.unique(result.label_map)) <= {0, 1, 2}


def test_legacy_pdmodel_multi_output_fetches_sorted_by_name(converted: Callable[[str], Path]) -> None:
    entry = converted("legacy_multi")
    conf = assert_conf_files_agree(entry)
    # saved as [probs, labels]; Paddle Serving's converter orders fetch vars by name
    fetched = [(f.name, f.fetch_type, list(f.shape)) for f in conf.fetch_var]
    assert fetched == [("argmax_0.tmp_0", 0, []), ("softmax_0.tmp_0", 1, [4])]
    config = ModelConfig.load(entry / "serving_server")
    assert (config.files.model_file, config.files.params_file, config.files.format) == (
        "model.pdmodel",
        "params.pdiparams",
        "legacy",
    )
    assert config.preprocess is None and config.postprocess is None  # no deploy.yaml: tensors only
    assert config.onnx.check.passed and config.onnx.check.max_abs_diff <= 1e-4


def test_fluid_model_is_resaved_combined_with_identical_outputs(
    converted: Callable[[str], Path], build_model: Callable[[str], Path]
) -> None:
    from paddle import inference

    entry = converted("fluid")
    server = entry / "serving_server"
    assert (server / "model.pdmodel").is_file() and (server / "params.pdiparams").is_file()
    assert not (server / "conv2d_0.w_0").exists()
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32)

    def run(config: inference.Config) -> list[np.ndarray]:
        config.disable_glog_info()
        predictor = inference.create_predictor(config)
        handle = predictor.get_input_handle("x")
        handle.reshape(list(x.shape))
        handle.copy_from_cpu(x)
        predictor.run()
        return [predictor.get_output_handle(n).copy_to_cpu() for n in predictor.get_output_names()]

    original = run(inference.Config(str(build_model("fluid"))))
    combined = run(inference.Config(str(server / "model.pdmodel"), str(server / "params.pdiparams")))
    for a, b in zip(original, combined, strict=True):
        np.testing.assert_array_equal(a, b)


def test_softmax_export_records_classes(converted: Callable[[str], Path]) -> None:
    config = ModelConfig.load(converted("pir_softmax") / "serving_server")
    assert config.postprocess.output_op == "softmax"
    assert config.postprocess.num_classes == 2
    assert config.postprocess.class_names == ["background", "person"]
    assert config.onnx.check.max_abs_diff <= 1e-4


def test_serving_server_dir_reconverts_keeping_aliases_and_file_names(
    build_model: Callable[[str], Path], tmp_path: Path
) -> None:
    first = tmp_path / "first"
    proc = run_convert(
        "--dirname", build_model("legacy_multi"), "--serving_server", first / "serving_server",
        "--serving_client", first / "serving_client", "--feed_alias_names", "image",
        "--fetch_alias_names", "labels,probs", "--no-onnx",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    conf = assert_conf_files_agree(first)
    assert [(f.name, f.alias_name) for f in conf.feed_var] == [("x", "image")]
    assert [(f.name, f.alias_name) for f in conf.fetch_var] == [
        ("argmax_0.tmp_0", "labels"),
        ("softmax_0.tmp_0", "probs"),
    ]

    second = tmp_path / "second"
    proc = run_convert(
        "--dirname", first / "serving_server", "--serving_server", second / "serving_server",
        "--serving_client", second / "serving_client",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert assert_conf_files_agree(second) == conf
    config = ModelConfig.load(second / "serving_server")
    assert config.source["input_format"] == "serving_server"
    assert (config.files.model_file, config.files.params_file) == ("model.pdmodel", "params.pdiparams")


def test_deploy_yaml_without_output_op_is_inferred(build_model: Callable[[str], Path], tmp_path: Path) -> None:
    export = tmp_path / "v26"
    shutil.copytree(build_model("pir_interp"), export)
    # PaddleSeg <= 2.6 wrote only model, params and transforms
    (export / "deploy.yaml").write_text(
        "Deploy:\n  model: model.pdmodel\n  params: model.pdiparams\n  transforms:\n  - type: Normalize\n"
    )
    proc = run_convert("--dirname", export, "--serving_server", tmp_path / "s", "--serving_client", tmp_path / "c",
                       "--no-onnx", "--name", "v26")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    config = ModelConfig.load(tmp_path / "s")
    assert config.name == "v26"
    assert config.postprocess.output_op == "argmax"
    assert config.onnx is None
