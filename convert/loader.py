"""Find the program and params of an exported model and read its feed and fetch variables."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from segcore.dtypes import code_for
from segcore.repository import PARAMS_SUFFIXES, PROGRAM_SUFFIXES, find_by_suffix
from segcore.servingconf import SERVER_CONF, SERVER_STREAM, ServingConf, read_conf

InputFormat = Literal["pir", "legacy", "fluid", "serving_server"]
_PROGRAM_CANDIDATES = ("model.json", "model.pdmodel", "inference.json", "inference.pdmodel", "__model__")
_PARAMS_CANDIDATES = ("model.pdiparams", "inference.pdiparams", "params.pdiparams", "__params__")


class ConvertError(Exception):
    """A conversion failure with a message meant for the user (one line)."""


@dataclass(frozen=True)
class Var:
    """A feed or fetch variable of the program: name, Paddle dtype name, dims (-1 = dynamic), lod level."""

    name: str
    dtype: str
    dims: tuple[int, ...]
    lod_level: int = 0

    @property
    def type_code(self) -> int:
        return code_for(self.dtype)


@dataclass(frozen=True)
class SourceModel:
    """An exported model on disk. params_file None means one file per parameter (fluid)."""

    dirname: Path
    format: InputFormat
    program_file: Path
    params_file: Path | None
    feeds: tuple[Var, ...]
    fetches: tuple[Var, ...]
    serving_conf: ServingConf | None = None

    @property
    def is_pir(self) -> bool:
        return self.program_file.suffix == ".json"


def _pick(dirname: Path, given: str | None, candidates: tuple[str, ...], what: str) -> Path | None:
    if given:
        path = dirname / given
        if not path.is_file():
            raise ConvertError(f"{what} {path} does not exist")
        return path
    for name in candidates:
        if (dirname / name).is_file():
            return dirname / name
    return None


def locate(
    dirname: Path,
    model_filename: str | None,
    params_filename: str | None,
    deploy_model: str | None = None,
    deploy_params: str | None = None,
) -> SourceModel:
    """Detect the input format and read the program's variables; ConvertError on anything unusable."""
    dirname = Path(dirname)
    if not dirname.is_dir():
        raise ConvertError(f"--dirname {dirname} is not a directory")
    serving_conf = None
    if (dirname / SERVER_CONF).is_file() or (dirname / SERVER_STREAM).is_file():
        try:
            serving_conf = read_conf(dirname)
        except ValueError as exc:
            raise ConvertError(str(exc)) from exc
    program = _pick(dirname, model_filename, _deploy_first(dirname, deploy_model, _PROGRAM_CANDIDATES), "model file")
    if program is None and serving_conf is not None:
        program = find_by_suffix(dirname, PROGRAM_SUFFIXES)
    if program is None:
        raise ConvertError(
            f"{dirname}: no model program found (looked for {', '.join(_PROGRAM_CANDIDATES)}); pass --model_filename"
        )
    params = _pick(dirname, params_filename, _deploy_first(dirname, deploy_params, _PARAMS_CANDIDATES), "params file")
    if params is None and serving_conf is not None:
        params = find_by_suffix(dirname, PARAMS_SUFFIXES)
    if params is None and program.name != "__model__":
        raise ConvertError(f"{dirname}: no params file found next to {program.name}; pass --params_filename")
    feeds, fetches = _read_pir(program) if program.suffix == ".json" else _read_legacy(program)
    if serving_conf is not None:
        fmt: InputFormat = "serving_server"
    elif program.suffix == ".json":
        fmt = "pir"
    else:
        fmt = "fluid" if params is None else "legacy"
    return SourceModel(dirname, fmt, program, params, feeds, fetches, serving_conf)


def _deploy_first(dirname: Path, name: str | None, candidates: tuple[str, ...]) -> tuple[str, ...]:
    if not name:
        return candidates
    names = [name]
    if name.endswith(".pdmodel"):  # PaddleSeg on Paddle 3 writes model.pdmodel into deploy.yaml but saves model.json
        names.append(name[: -len(".pdmodel")] + ".json")
    return tuple(names) + candidates


def _read_legacy(program: Path) -> tuple[tuple[Var, ...], tuple[Var, ...]]:
    from paddle.base.proto import framework_pb2

    desc = framework_pb2.ProgramDesc()  # type: ignore[attr-defined]  # a protobuf module without stubs
    try:
        desc.ParseFromString(program.read_bytes())
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ConvertError(f"{program}: not a Paddle program (cannot parse: {exc})") from exc
    if not desc.blocks:
        raise ConvertError(f"{program}: Paddle program has no blocks")
    block = desc.blocks[0]
    variables = {v.name: v for v in block.vars}
    feeds: list[tuple[int, str]] = []
    fetches: list[tuple[int, str]] = []
    for op in block.ops:
        if op.type not in ("feed", "fetch"):
            continue
        col = next((a.i for a in op.attrs if a.name == "col"), 0)
        if op.type == "feed":
            feeds.append((col, op.outputs[0].arguments[0]))
        else:
            fetches.append((col, op.inputs[0].arguments[0]))
    if not feeds or not fetches:
        raise ConvertError(f"{program}: no feed/fetch ops; is this an inference model (save_inference_model/jit.save)?")

    def var(name: str) -> Var:
        if name not in variables:
            raise ConvertError(f"{program}: variable {name} is not declared in the program")
        vtype = variables[name].type
        holder = getattr(vtype, "dense_tensor", None) if vtype.HasField("dense_tensor") else vtype.lod_tensor
        assert holder is not None
        tensor = holder.tensor
        dtype = framework_pb2.VarType.Type.Name(tensor.data_type)  # type: ignore[attr-defined]
        lod = getattr(holder, "legacy_lod_level", getattr(holder, "lod_level", 0))
        return Var(name, dtype, tuple(int(d) for d in tensor.dims), int(lod))

    return tuple(var(n) for _, n in sorted(feeds)), tuple(var(n) for _, n in sorted(fetches))


def _read_pir(program: Path) -> tuple[tuple[Var, ...], tuple[Var, ...]]:
    try:
        json.loads(program.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConvertError(f"{program}: not a PIR model.json ({exc})") from exc
    import paddle

    prog = paddle.static.Program()
    try:
        paddle.base.core.deserialize_pir_program(str(program), prog)
    except Exception as exc:  # paddle raises assorted C++ errors for corrupt files
        raise ConvertError(f"{program}: Paddle cannot load this model: {' '.join(str(exc).split())[:300]}") from exc
    feeds: dict[str, Var] = {}
    fetches: list[tuple[int, Var]] = []
    for op in prog.global_block().ops:
        attrs = op.attrs()
        if op.name() == "pd_op.data":
            result = op.results()[0]
            feeds[attrs["name"]] = Var(attrs["name"], _pir_dtype(result.dtype), tuple(result.shape))
        elif op.name() == "pd_op.fetch":
            value = op.operands_source()[0]
            fetches.append(
                (attrs.get("col", len(fetches)), Var(attrs["name"], _pir_dtype(value.dtype), tuple(value.shape)))
            )
    ordered_feeds = tuple(feeds.values())
    if not ordered_feeds or not fetches:
        raise ConvertError(f"{program}: no feed/fetch variables found in the program")
    return ordered_feeds, tuple(v for _, v in sorted(fetches, key=lambda c: c[0]))


def _pir_dtype(dtype: object) -> str:
    return str(getattr(dtype, "name", dtype)).rsplit(".", 1)[-1].upper()
