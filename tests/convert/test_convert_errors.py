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


def test_adaptive_pooling_on_a_dynamic_shape_gets_a_verified_onnx_copy(
    build_model: Callable[[str], Path], tmp_path: Path
) -> None:
    """paddle2onnx refuses adaptive pooling on a dynamic H, W; the PIR rewrite makes it exportable."""
    import onnxruntime as ort

    proc = convert_into(tmp_path / "dyn", build_model("adaptive"))
    assert proc.returncode == 0, proc.stderr
    server = tmp_path / "dyn" / "serving_server"
    config = ModelConfig.load(server)
    assert config.onnx is not None and config.onnx.check.passed, config
    assert any("adaptive pooling" in note for note in config.onnx.rewrites)
    session = ort.InferenceSession(str(server / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [d if isinstance(d, int) else None for d in session.get_inputs()[0].shape[2:]] == [None, None]
    engine = PaddleEngine(server / config.files.model_file, server / config.files.params_file, EngineOptions())
    for h, w in ((40, 56), (67, 33)):  # sizes that do not divide into the 2x2 bins evenly, too
        x = np.random.default_rng(h).uniform(-1, 1, (1, 3, h, w)).astype(np.float32)
        expected = engine.run({"x": x})[engine.output_names[0]]
        assert np.array_equal(session.run(None, {"x": x})[0], expected)


def test_no_onnx_copy_is_one_warning_and_the_model_still_converts(
    build_model: Callable[[str], Path], tmp_path: Path
) -> None:
    """A legacy program with adaptive pooling on a dynamic shape cannot be exported: say why, keep the model."""
    proc = convert_into(tmp_path / "out", build_model("legacy_adaptive"))
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "no ONNX copy" in line]
    assert len(warnings) == 1 and "adaptive pooling" in warnings[0] and "--input_shape" in warnings[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert "no ONNX copy (serves on Paddle Inference)" in proc.stdout
    server = tmp_path / "out" / "serving_server"
    config = ModelConfig.load(server)
    assert config.onnx is None and "adaptive pooling" in (config.onnx_missing or "")
    assert not (server / "model.onnx").exists()


def test_static_shape_adaptive_export_and_no_onnx_flag(build_model: Callable[[str], Path], tmp_path: Path) -> None:
    proc = convert_into(tmp_path / "dyn", build_model("adaptive"), "--no-onnx")
    assert proc.returncode == 0, proc.stderr
    config = ModelConfig.load(tmp_path / "dyn" / "serving_server")
    assert config.onnx is None and config.onnx_missing is None
    proc = convert_into(tmp_path / "static", build_model("adaptive_static"))
    assert proc.returncode == 0, proc.stderr
    config = ModelConfig.load(tmp_path / "static" / "serving_server")
    assert config.onnx.check.passed and config.input_shape == [None, 3, 64, 64] and config.onnx.rewrites == []


def test_failed_conversion_keeps_previous_output_and_success_replaces_it(
    build_model: Callable[[str], Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    (out / "serving_server").mkdir(parents=True)
    (out / "serving_server" / "previous.txt").write_text("old")
    broken = tmp_path / "broken"
    shutil.copytree(build_model("pir_interp"), broken)
    (broken / "model.pdiparams").write_bytes(b"\x00garbage" * 3)
    proc = convert_into(out, broken)
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
        ("unknown_transform", ("unknown transform type 'ResizeToIntMult'",)),
        ("training_transform", ("transform #0", "RandomBlur is not supported", "training-time augmentation")),
        ("unseen_padding", ("ScalePadding is not supported", "mapped back")),
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
        (export / "deploy.yaml").write_text("Deploy:\n  transforms:\n  - type: ResizeToIntMult\n")
    elif breakage == "training_transform":
        (export / "deploy.yaml").write_text("Deploy:\n  transforms:\n  - type: RandomBlur\n")
    elif breakage == "unseen_padding":
        (export / "deploy.yaml").write_text("Deploy:\n  transforms:\n  - type: ScalePadding\n")
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


@pytest.mark.parametrize("output_op", [None, "argmax", "softmax"])
def test_a_classifier_is_refused_as_not_a_segmentation_model(
    build_model: Callable[[str], Path], tmp_path: Path, output_op: str | None
) -> None:
    export = tmp_path / "export"
    shutil.copytree(build_model("classifier"), export)
    op_line = f"  output_op: {output_op}\n" if output_op else ""
    (export / "deploy.yaml").write_text(f"Deploy:\n{op_line}  transforms:\n  - type: Normalize\n")
    out = tmp_path / "out"
    assert_one_error_line(convert_into(out, export), "not a segmentation model", "[2, 3]")
    assert not out.exists() or (leftovers(out) == [] and not (out / "serving_server").exists())


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
    exported = ExportResult(tampered, config.onnx.opset, config.onnx.input_names, config.onnx.output_names, [])
    args = (engine.run(feeds), feeds)
    good = verify_onnx(*args, server / "model.onnx", engine.input_names, engine.output_names, exported)
    bad = verify_onnx(*args, tampered, engine.input_names, engine.output_names, exported)
    assert good.check.passed and good.check.max_abs_diff <= 1e-4
    assert not bad.check.passed and bad.check.max_abs_diff > 1e-4
