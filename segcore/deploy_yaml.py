"""Read PaddleSeg's `deploy.yaml` (every generation of its schema) into SegServing's config parts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from segcore.modelconfig import Preprocess, one_line
from segcore.transforms import parse_transform

_OUTPUT_OPS = ("argmax", "softmax", "none", "sigmoid")


@dataclass(frozen=True)
class DeployInfo:
    """What a deploy.yaml says: preprocessing, output op (None if unrecorded), file names, extras."""

    preprocess: Preprocess
    output_op: str | None
    model: str | None
    params: str | None
    input_shape: list[int | None] | None
    class_names: list[str] | None


def read_deploy_yaml(path: Path) -> DeployInfo:
    """Parse a deploy.yaml; ValueError with one clear line for anything SegServing cannot honour."""
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read deploy.yaml: {one_line(exc)}") from exc
    if isinstance(doc, dict) and "DEPLOY" in doc:
        raise ValueError(
            f"{path}: PaddleSeg 0.x 'DEPLOY:' config; its graph embeds its own preprocessing, which SegServing "
            "cannot reproduce. Convert without deploy.yaml to serve tensors only, or re-export with PaddleSeg >= 2.0"
        )
    if not isinstance(doc, dict) or not isinstance(doc.get("Deploy"), dict):
        raise ValueError(f"{path}: not a PaddleSeg deploy.yaml (no top-level 'Deploy:' mapping)")
    deploy = doc["Deploy"]
    entries = deploy.get("transforms") or [{"type": "Normalize"}]
    if not isinstance(entries, list):
        raise ValueError(f"{path}: Deploy.transforms must be a list")
    transforms = []
    for i, entry in enumerate(entries):
        try:
            transforms.append(parse_transform(dict(entry) if isinstance(entry, dict) else entry))
        except ValidationError as exc:
            raise ValueError(f"{path}: transform #{i} ({entry.get('type')}): {one_line(exc)}") from exc
        except ValueError as exc:
            raise ValueError(f"{path}: transform #{i}: {exc}") from exc
    pixel_dtype = deploy.get("pixel_dtype", "float32")  # SegServing's extension; PaddleSeg's is float32
    if pixel_dtype not in ("float32", "uint8"):
        raise ValueError(f"{path}: Deploy.pixel_dtype must be float32 or uint8, got {pixel_dtype!r}")
    return DeployInfo(
        preprocess=Preprocess(transforms=transforms, pixel_dtype=pixel_dtype),
        output_op=_output_op(deploy, path),
        model=deploy.get("model"),
        params=deploy.get("params"),
        input_shape=_input_shape(deploy.get("input_shape"), path),
        class_names=_class_names(deploy.get("class_names"), path),
    )


def _output_op(deploy: dict, path: Path) -> str | None:
    op = deploy.get("output_op")
    if op is not None:
        if op not in _OUTPUT_OPS:
            raise ValueError(f"{path}: Deploy.output_op {op!r} is not one of {', '.join(_OUTPUT_OPS)}")
        return str(op)
    if "with_argmax" in deploy or "with_softmax" in deploy:  # develop-branch schema of Sep 2022
        if deploy.get("with_argmax", True):
            return "argmax"
        return "softmax" if deploy.get("with_softmax") else "none"
    return None


def _input_shape(shape: object, path: Path) -> list[int | None] | None:
    if shape is None:
        return None
    if not isinstance(shape, list) or not all(d is None or isinstance(d, int) for d in shape):
        raise ValueError(f"{path}: Deploy.input_shape must be a list of ints or nulls, got {shape!r}")
    return [None if d is None or d < 0 else d for d in shape]


def _class_names(names: object, path: Path) -> list[str] | None:
    if names is None:
        return None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{path}: Deploy.class_names must be a list of strings")
    return list(names)
