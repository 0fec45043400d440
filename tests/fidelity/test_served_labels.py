"""Served labels equal PaddleSeg's own pipeline on every PaddleSeg export, on both engines, at several sizes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import agreement_floor
from servers import ServerProcess, start_server

import client_sdk
from benchmarks.paddleseg_exports import FORMATS, KINDS, export_name
from segcore.modelconfig import ModelConfig

pytest.importorskip("paddleseg", reason="needs paddleseg 2.8.0 (./scripts/test installs it)")
ENGINES = ("paddle", "onnxruntime")
# Paddle 3.2 writes these kinds in the legacy format as well (see benchmarks.paddleseg_exports).
LEGACY_WRITABLE = ("deeplabv3p_resnet18", "pp_humanseg_lite", "trained_humanseg")
EXPORTS = [export_name(k, "pir") for k in KINDS] + [export_name(k, "legacy") for k in LEGACY_WRITABLE]


def test_every_kind_is_exported_in_each_format_paddle_can_write(paddleseg_exports: dict[str, Path]) -> None:
    assert sorted(paddleseg_exports) == sorted(EXPORTS)
    assert set(FORMATS) == {name.rsplit("-", 1)[1] for name in paddleseg_exports}
    assert (paddleseg_exports["deeplabv3p_resnet18-legacy"] / "model.pdmodel").is_file()
    assert (paddleseg_exports["deeplabv3p_resnet18-pir"] / "model.json").is_file()


@pytest.mark.parametrize("export", EXPORTS)
def test_every_export_converts_with_a_verified_onnx_copy(paddleseg_repository: Path, export: str) -> None:
    server_dir = paddleseg_repository / export / "serving_server"
    config = ModelConfig.load(server_dir)
    assert config.onnx is not None and config.onnx.check.passed, config.onnx_missing
    assert (server_dir / config.onnx.file).is_file()
    deploy = (server_dir / "deploy.yaml").read_text()
    assert f"model: {config.files.model_file}" in deploy and (server_dir / config.files.model_file).is_file()
    if export.startswith("pp_liteseg_stdc1-"):  # dynamic H, W through adaptive pooling: the PIR rewrite did it
        assert any("adaptive pooling" in note for note in config.onnx.rewrites)
    if export.startswith("pp_liteseg_stdc1_fixed-"):
        assert config.input_shape == [1, 3, 512, 512]


@pytest.fixture(scope="module", params=ENGINES)
def served(request: pytest.FixtureRequest, paddleseg_repository: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ServerProcess]]:  # fmt: skip
    engine = request.param
    models = [str(paddleseg_repository / name) for name in EXPORTS]
    workdir = tmp_path_factory.mktemp(f"fidelity-{engine}")
    with start_server(workdir, "--model", *models, "--engine", engine, "--thread", "1") as server:
        yield engine, server


@pytest.mark.parametrize("export", EXPORTS)
def test_served_labels_agree_with_paddleseg(
    served: tuple[str, ServerProcess], export: str, test_images: list[Path],
    reference_labels: Callable[[str, Path], np.ndarray],
) -> None:  # fmt: skip
    engine, server = served
    client = client_sdk.SegClient(server.address, model=export)
    floor = agreement_floor(export)
    for image in test_images:
        expected = reference_labels(export, image)
        got = client.segment(image).label_map
        assert got.shape == expected.shape, (image.name, got.shape, expected.shape)
        agreement = float(np.mean(got == expected))
        assert agreement >= floor, f"{export} on {engine}, {image.name}: {agreement:.6f} < {floor}"
        if KINDS[export.rsplit("-", 1)[0]].trained:  # a trained model's masks mean something: shapes found
            assert 0.01 < float(np.mean(expected > 0)) < 0.9, image.name


def test_the_server_logs_which_engine_each_model_got(served: tuple[str, ServerProcess]) -> None:
    engine, server = served
    log = server.log()
    for export in EXPORTS:
        assert f"model {export} ready on {engine} (--engine {engine})" in log


@pytest.mark.parametrize("engine_name", ENGINES)
def test_a_fixed_batch_1_export_runs_any_batch(paddleseg_repository: Path, engine_name: str) -> None:
    """`--input_shape 1 3 512 512`: ONNX Runtime refuses batch 3 itself; the engine runs it as three and joins."""
    from segcore.engines import EngineOptions, create_engine

    server_dir = paddleseg_repository / "pp_liteseg_stdc1_fixed-pir" / "serving_server"
    config = ModelConfig.load(server_dir)
    engine = create_engine(server_dir, config, engine_name, EngineOptions())
    batch = np.random.default_rng(5).uniform(-1, 1, (3, 3, 512, 512)).astype(np.float32)
    together = engine.run({"x": batch})[engine.output_names[0]]
    alone = [engine.run({"x": batch[i : i + 1]})[engine.output_names[0]] for i in range(3)]
    assert together.shape == (3, 512, 512)
    assert np.array_equal(together, np.concatenate(alone))
