"""Conversion failures: one clear error line, exit code != 0, and nothing half-written on disk."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from helpers import run_convert

from convert.cli import build_parser
from convert.onnx_export import ExportResult, verify_onnx
from segcore.engines import EngineOptions
from segcore.engines.paddle_inference import PaddleEngine
from segcore.modelconfig import ModelConfig


def convert_into(out: Path, dirname: Path, *extra: str):
    return run_convert(
        "--dirname", dirname, "--serving_server", out / "serving_server", "--serving_client", out / "serving_client",
        *extra,
    )  # fmt: skip


def assert_one_error_line(proc, *fragments: str) -> None:
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".partial-" in p.name or ".old-" in p.name)


def test_help_documents_every_flag() -> None:
    text = build_parser().format_help()
    for flag in (
        "--dirname", "--model_filename", "--params_filename", "--serving_server", "--serving_client",
        "--feed_alias_names", "--fetch_alias_names", "--name", "--onnx", "--no-onnx", "--input_shape",
        "--onnx_tolerance",
    ):  # fmt: skip
        assert flag in text


def test_adaptive_pooling_fails_with_a_fix_and_writes_nothing(
    build_model: Callable[[str], Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    proc = convert_into(out, build_model("adaptive"))
    assert_one_error_line(proc, "adaptive pooling", "--input_shape", "--no-onnx")
    assert not (out / "serving_server").exists() and not (out / "serving_client").exists()
    assert leftovers(out) == []


def test_adaptive_pooling_converts_without_onnx_and_with_static_shape(
    build_model: Callable[[str], Path], tmp_path: Path
) -> None:
    proc = convert_into(tmp_path / "dyn", build_model("adaptive"), "--no-onnx")
    assert proc.returncode == 0, proc.stderr
    assert ModelConfig.load(tmp_path / "dyn" / "serving_server").onnx is None
    proc = convert_into(tmp_path / "static", build_model("adaptive_static"))
    assert proc.returncode == 0, proc.stderr
    config = ModelConfig.load(tmp_path / "static" / "serving_server")
    assert config.onnx.check.passed and config.input_shape == [None, 3, 64, 64]


def test_failed_conversion_keeps_previous_output_and_success_replaces_it(
    build_model: Callable[[str], Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    (out / "serving_server").mkdir(parents=True)
    (out / "serving_server" / "previous.txt").write_text("old")
    proc = convert_into(out, build_model("adaptive"))
    assert proc.returncode != 0
    assert (out / "serving_server" / "previous.txt").read_text() == "old"
    assert not (out / "serving_client").exists()
    proc = convert_into(out, build_model("pir_interp"), "--no-onnx")
    assert proc.returncode == 0, proc.stderr
    assert not (out / "serving_server" / "previous.txt").exists()
    assert (out / "serving_server" / "segserving.yaml").is_file()
    assert leftovers(out) == []


@pytest.mark.parametrize(
    ("breakage", "fragments"),
    [
        ("missing_dir", ("is not a directory",)),
        ("no_model", ("no model program found",)),
        ("wrong_model_filename", ("model file", "does not exist")),
        ("corrupt_json", ("not a PIR model.json",)),
        ("corrupt_params", ("Paddle Inference cannot run the model",)),
        ("missing_params", ("no params file",)),
        ("unknown_transform", ("unknown transform type 'RandomBlur'",)),
        ("bad_yaml", ("cannot read deploy.yaml",)),
        ("empty_yaml", ("not a PaddleSeg deploy.yaml", "no top-level 'Deploy:'")),
        ("transforms_not_a_list", ("Deploy.transforms must be a list",)),
        ("alias_count", ("--fetch_alias_names has 2 names but the model has 1 fetch vars",)),
    ],
)
def test_bad_inputs_give_one_clear_error(
    build_model: Callable[[str], Path], tmp_path: Path, breakage: str, fragments: tuple[str, ...]
) -> None:
    export = tmp_path / "export"
    shutil.copytree(build_model("pir_interp"), export)
    extra: list[str] = ["--no-onnx"]
    if breakage == "missing_dir":
        shutil.rmtree(export)
    elif breakage == "no_model":
        (export / "model.json").unlink()
    elif breakage == "wrong_model_filename":
        extra += ["--model_filename", "nope.pdmodel"]
    elif breakage == "corrupt_json":
        (export / "model.json").write_text("{not json")
    elif breakage == "corrupt_params":
        (export / "model.pdiparams").write_bytes(b"\x00garbage" * 3)
    elif breakage == "missing_params":
        (export / "model.pdiparams").unlink()
    elif breakage == "unknown_transform":
        (export / "deploy.yaml").write_text("Deploy:\n  transforms:\n  - type: RandomBlur\n")
    elif breakage == "bad_yaml":
        (export / "deploy.yaml").write_text("Deploy: [unclosed\n")
    elif breakage == "empty_yaml":
        (export / "deploy.yaml").write_text("")
    elif breakage == "transforms_not_a_list":
        (export / "deploy.yaml").write_text("Deploy:\n  model: model.json\n  transforms: 5\n")
    elif breakage == "alias_count":
        extra += ["--fetch_alias_names", "a,b"]
    out = tmp_path / "out"
    proc = convert_into(out, export, *extra)
    assert_one_error_line(proc, *fragments)
    assert not (out / "serving_server").exists()
    if out.exists():
        assert leftovers(out) == []


def test_corrupt_legacy_program_is_named(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / "model.pdmodel").write_bytes(np.random.default_rng(0).bytes(300))
    (export / "model.pdiparams").write_bytes(b"")
    proc = convert_into(tmp_path / "out", export)
    assert_one_error_line(proc, "model.pdmodel")


def test_onnx_check_fails_on_a_diverging_copy(converted: Callable[[str], Path], tmp_path: Path) -> None:
    """A real ONNX copy with one weight tensor altered must fail the parity check."""
    import onnx
    from onnx import numpy_helper

    server = converted("pir_softmax") / "serving_server"
    config = ModelConfig.load(server)
    model = onnx.load(str(server / "model.onnx"))
    tensors = list(model.graph.initializer) + [
        attr.t
        for node in model.graph.node
        if node.op_type == "Constant"
        for attr in node.attribute
        if attr.name == "value"
    ]
    weights = max(tensors, key=lambda t: int(np.prod(t.dims)))
    weights.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weights) * 1.5, weights.name))
    tampered = tmp_path / "tampered.onnx"
    onnx.save(model, str(tampered))

    engine = PaddleEngine(server / config.files.model_file, server / config.files.params_file, EngineOptions())
    feeds = {"x": np.random.default_rng(1).uniform(-1, 1, (2, 3, 48, 64)).astype(np.float32)}
    exported = ExportResult(tampered, config.onnx.opset, config.onnx.input_names, config.onnx.output_names)
    args = (engine.run(feeds), feeds)
    good = verify_onnx(*args, server / "model.onnx", engine.input_names, engine.output_names, exported)
    bad = verify_onnx(*args, tampered, engine.input_names, engine.output_names, exported)
    assert good.check.passed and good.check.max_abs_diff <= 1e-4
    assert not bad.check.passed and bad.check.max_abs_diff > 1e-4
