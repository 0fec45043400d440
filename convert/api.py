"""convert_model: the whole conversion, callable from Python; the CLI is a thin wrapper over it."""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from pydantic import ValidationError

from convert.legacy_resave import MODEL_NAME, PARAMS_NAME, resave_combined
from convert.loader import ConvertError, SourceModel, locate
from convert.output import staged_dirs
from convert.sample import sample_feeds
from segcore.deploy_yaml import DeployInfo, read_deploy_yaml
from segcore.engines.base import Engine, EngineOptions
from segcore.modelconfig import ModelConfig, ModelFiles, OnnxInfo, Postprocess, one_line
from segcore.servingconf import ServingConf, VarSpec, conf_shape, write_conf

log = logging.getLogger("convert")
DEPLOY_NAMES = ("deploy.yaml", "inference.yml")
ONNX_NAME = "model.onnx"


@dataclass(frozen=True)
class ConvertOptions:
    """Paddle Serving's converter options plus SegServing's (name, ONNX copy, input shape)."""

    dirname: Path
    model_filename: str | None = None
    params_filename: str | None = None
    serving_server: Path = Path("serving_server")
    serving_client: Path = Path("serving_client")
    feed_alias_names: list[str] | None = None
    fetch_alias_names: list[str] | None = None
    name: str | None = None
    onnx: bool = True
    input_shape: list[int | None] | None = None
    onnx_tolerance: float = 1e-4


@dataclass(frozen=True)
class ConvertResult:
    server_dir: Path
    client_dir: Path
    config: ModelConfig
    conf: ServingConf


def convert_model(opts: ConvertOptions) -> ConvertResult:
    """Convert; on any failure raise ConvertError and leave no output behind."""
    dirname = Path(opts.dirname)
    deploy = _read_deploy(dirname)
    source = locate(
        dirname,
        opts.model_filename,
        opts.params_filename,
        deploy.model if deploy else None,
        deploy.params if deploy else None,
    )
    conf = _serving_conf(source, opts)
    with staged_dirs(Path(opts.serving_server), Path(opts.serving_client)) as (server_tmp, client_tmp):
        files = _place_model_files(source, opts, server_tmp)
        input_shape = opts.input_shape or (deploy.input_shape if deploy else None)
        if input_shape is None:
            input_shape = [None if d < 0 else d for d in source.feeds[0].dims]
        feeds = sample_feeds(source, deploy.preprocess if deploy else None, input_shape)
        engine, outputs = _run_paddle(server_tmp, files, feeds)
        config = ModelConfig(
            name=opts.name or _default_name(opts),
            files=files,
            input_name=source.feeds[0].name,
            input_shape=input_shape,
            output_shapes={v.name: [None if d < 0 else d for d in v.dims] for v in source.fetches},
            preprocess=deploy.preprocess if deploy else None,
            postprocess=_postprocess(deploy, engine.output_names[0], outputs[engine.output_names[0]]),
            source={
                "converted_from": str(dirname.absolute()),
                "input_format": source.format,
                "paddle_version": _paddle_version(),
                "converted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
        )
        if opts.onnx:
            config = _with_onnx(config, server_tmp, files, engine, feeds, outputs, opts)
        config.save(server_tmp)
        if deploy is not None:
            _copy_deploy(dirname, server_tmp, files)
        write_conf(conf, server_tmp, client=False)
        write_conf(conf, client_tmp, client=True)
    if config.preprocess is None:
        log.warning("no deploy.yaml in %s: the model serves tensors only (no image API)", dirname)
    return ConvertResult(Path(opts.serving_server), Path(opts.serving_client), config, conf)


def _read_deploy(dirname: Path) -> DeployInfo | None:
    for name in DEPLOY_NAMES:
        if (dirname / name).is_file():
            try:
                return read_deploy_yaml(dirname / name)
            except ValueError as exc:
                raise ConvertError(str(exc)) from exc
    return None


def _copy_deploy(dirname: Path, server_dir: Path, files: ModelFiles) -> None:
    """Copy deploy.yaml naming the files as they are in serving_server/ (PaddleSeg on Paddle 3 writes
    model.pdmodel for a model.json program; a serving dir may have renamed them)."""
    for name in DEPLOY_NAMES:
        if (dirname / name).is_file():
            doc = yaml.safe_load((dirname / name).read_text(encoding="utf-8"))
            doc["Deploy"].update(model=files.model_file, params=files.params_file)
            (server_dir / name).write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def _default_name(opts: ConvertOptions) -> str:
    server = Path(opts.serving_server).absolute()
    return server.parent.name if server.name == "serving_server" and server.parent.name else Path(opts.dirname).name


def _aliases(given: list[str] | None, names: list[str], what: str) -> list[str]:
    if given is None:
        return names
    if len(given) != len(names):
        raise ConvertError(
            f"--{what}_alias_names has {len(given)} names but the model has {len(names)} {what} vars: "
            + ", ".join(names)
        )
    return given


def _serving_conf(source: SourceModel, opts: ConvertOptions) -> ServingConf:
    """Feeds in program order; fetches sorted by name (Paddle Serving's rule) unless a conf already orders them."""
    old = source.serving_conf
    feed_alias = {v.name: v.alias for v in old.feeds} if old else {}
    fetch_alias = {v.name: v.alias for v in old.fetches} if old else {}
    fetches = list(source.fetches)
    if old is None:
        fetches.sort(key=lambda v: v.name)
    else:
        order = {v.name: i for i, v in enumerate(old.fetches)}
        fetches.sort(key=lambda v: order.get(v.name, len(order)))
    feed_names = _aliases(opts.feed_alias_names, [feed_alias.get(v.name, v.name) for v in source.feeds], "feed")
    fetch_names = _aliases(opts.fetch_alias_names, [fetch_alias.get(v.name, v.name) for v in fetches], "fetch")
    return ServingConf(
        feeds=tuple(
            VarSpec(v.name, a, v.type_code, conf_shape(v.dims, v.lod_level > 0), v.lod_level > 0)
            for v, a in zip(source.feeds, feed_names, strict=True)
        ),
        fetches=tuple(
            VarSpec(v.name, a, v.type_code, conf_shape(v.dims, v.lod_level > 0), v.lod_level > 0)
            for v, a in zip(fetches, fetch_names, strict=True)
        ),
    )


def _place_model_files(source: SourceModel, opts: ConvertOptions, out: Path) -> ModelFiles:
    if source.params_file is None:
        model, params = resave_combined(source.dirname, source.program_file, out)
        return ModelFiles(model_file=model.name, params_file=params.name, format="legacy")
    if source.format == "serving_server":
        model_name, params_name = source.program_file.name, source.params_file.name
    else:
        model_name = opts.model_filename or ("model.json" if source.is_pir else MODEL_NAME)
        params_name = opts.params_filename or PARAMS_NAME
    shutil.copy2(source.program_file, out / model_name)
    shutil.copy2(source.params_file, out / params_name)
    return ModelFiles(model_file=model_name, params_file=params_name, format="pir" if source.is_pir else "legacy")


def _run_paddle(server_dir: Path, files: ModelFiles,
                feeds: dict[str, np.ndarray]) -> tuple[Engine, dict[str, np.ndarray]]:  # fmt: skip
    from segcore.engines.paddle_inference import PaddleEngine

    try:
        engine = PaddleEngine(server_dir / files.model_file, server_dir / files.params_file, EngineOptions())
        return engine, engine.run(feeds)
    except Exception as exc:  # Paddle raises assorted C++ exception types
        shapes = {k: list(v.shape) for k, v in feeds.items()}
        raise ConvertError(
            f"Paddle Inference cannot run the model on a sample input {shapes}: {' '.join(str(exc).split())[:400]}"
        ) from exc


def _postprocess(deploy: DeployInfo | None, output_name: str, output: np.ndarray) -> Postprocess | None:
    if deploy is None:
        return None
    op = deploy.output_op or _infer_output_op(output)
    labels_ok = op == "argmax" and (output.ndim == 3 or (output.ndim == 4 and output.shape[1] == 1))
    if not labels_ok and not (op != "argmax" and output.ndim == 4):
        want = "N x H x W labels" if op == "argmax" else "N x C x H x W class maps"
        raise ConvertError(
            f"not a segmentation model: its output has shape {list(output.shape)} where output_op {op} needs {want}"
        )
    num_classes = None
    if op != "argmax" and output.ndim == 4:
        num_classes = 2 if output.shape[1] == 1 else int(output.shape[1])
    names = deploy.class_names
    if names is not None:
        num_classes = num_classes or len(names)
        if len(names) != num_classes:
            raise ConvertError(
                f"deploy.yaml class_names has {len(names)} names but the model has {num_classes} classes"
            )
    try:
        return Postprocess.model_validate(
            {"output_name": output_name, "output_op": op, "num_classes": num_classes, "class_names": names}
        )
    except ValidationError as exc:
        raise ConvertError(one_line(exc)) from exc


def _infer_output_op(output: np.ndarray) -> str:
    """deploy.yaml without output_op (PaddleSeg <= 2.6): read it off the sample output."""
    if output.ndim == 3 and np.issubdtype(output.dtype, np.integer):
        return "argmax"
    if output.ndim != 4:
        raise ConvertError(
            f"not a segmentation model: its output has shape {list(output.shape)} ({output.dtype}), neither "
            "N x H x W labels nor N x C x H x W class maps"
        )
    in_unit = float(output.min()) >= 0.0 and float(output.max()) <= 1.0
    if output.shape[1] == 1:
        return "sigmoid" if in_unit else "none"
    return "softmax" if in_unit and np.allclose(output.sum(axis=1), 1.0, atol=1e-3) else "none"


def _onnx_copy(server_dir: Path, files: ModelFiles, engine: Engine, feeds: dict[str, np.ndarray],
               outputs: dict[str, np.ndarray], opts: ConvertOptions) -> OnnxInfo:  # fmt: skip
    """Export and verify model.onnx; ConvertError (the reason, one line) when no verified copy can be made."""
    try:
        from convert.onnx_export import export_onnx, verify_onnx
    except ImportError as exc:
        raise ConvertError(f"the ONNX export needs paddle2onnx and onnx ({exc}); pip install '.[convert]'") from exc
    exported = export_onnx(server_dir / files.model_file, server_dir / files.params_file, server_dir / ONNX_NAME)
    info = verify_onnx(
        outputs, feeds, exported.path, engine.input_names, engine.output_names, exported, opts.onnx_tolerance
    )
    if not info.check.passed:
        raise ConvertError(
            f"the ONNX copy does not match Paddle on a sample input {info.check.sample_shape}: label agreement "
            f"{info.check.label_agreement}, max abs diff {info.check.max_abs_diff} (tolerance {info.check.tolerance})"
        )
    return info


def _with_onnx(
    config: ModelConfig, server_dir: Path, files: ModelFiles, engine: Engine,
    feeds: dict[str, np.ndarray], outputs: dict[str, np.ndarray], opts: ConvertOptions,
) -> ModelConfig:  # fmt: skip
    """The config with its verified ONNX copy, or with the reason there is none (the model serves on Paddle)."""
    try:
        return config.model_copy(update={"onnx": _onnx_copy(server_dir, files, engine, feeds, outputs, opts)})
    except ConvertError as exc:
        (server_dir / ONNX_NAME).unlink(missing_ok=True)
        log.warning("no ONNX copy: %s; the model serves on Paddle Inference", exc)
        return config.model_copy(update={"onnx_missing": str(exc)})


def _paddle_version() -> str:
    import paddle

    return str(paddle.__version__)
