"""The model repository: a directory of named models, each in Paddle Serving's layout.

<root>/<name>/serving_server/   model files, serving_server_conf.prototxt(.stream), segserving.yaml
<root>/<name>/serving_client/   serving_client_conf.prototxt(.stream)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from segcore.modelconfig import CONFIG_NAME, ModelConfig
from segcore.servingconf import SERVER_CONF, SERVER_STREAM, ServingConf, read_conf


def _default_root() -> Path:
    from serving_models import ROOT

    return ROOT


DEFAULT_ROOT = _default_root()


@dataclass(frozen=True)
class ModelSpec:
    """A model found on disk: its name, dirs, Paddle Serving conf and SegServing config (None if absent)."""

    name: str
    server_dir: Path
    client_dir: Path | None
    conf: ServingConf
    config: ModelConfig | None


PROGRAM_SUFFIXES = (".json", ".pdmodel", "__model__", "model")
PARAMS_SUFFIXES = (".pdiparams", "__params__", "params")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # NAME in --model NAME=DIR: one URL path segment


def find_by_suffix(directory: Path, suffixes: tuple[str, ...]) -> Path | None:
    """Paddle Serving's rule for serving_server dirs: the first file (by name) whose name ends with a suffix."""
    for path in sorted(Path(directory).iterdir()):
        if path.is_file() and path.name.endswith(suffixes) and not path.name.endswith(".prototxt"):
            return path
    return None


def paddle_files(server_dir: Path) -> tuple[Path, Path]:
    """(program, params) of a serving_server dir, found as Paddle Serving finds them; FileNotFoundError if absent."""
    program, params = find_by_suffix(server_dir, PROGRAM_SUFFIXES), find_by_suffix(server_dir, PARAMS_SUFFIXES)
    if program is None or params is None:
        raise FileNotFoundError(f"{server_dir}: no combined program and params files (e.g. model.pdmodel + "
                                "params.pdiparams); convert the model with `python -m convert` first")  # fmt: skip
    return program, params


def _is_server_dir(path: Path) -> bool:
    return (path / SERVER_CONF).is_file() or (path / SERVER_STREAM).is_file()


def load_spec(path: Path, name: str | None = None) -> ModelSpec:
    """Load a model from a repository entry dir (holding serving_server/) or from a serving_server dir."""
    path = Path(path)
    if (path / "serving_server").is_dir():
        server_dir, entry_name = path / "serving_server", path.name
    elif _is_server_dir(path):
        server_dir = path
        entry_name = path.parent.name if path.name == "serving_server" else path.name
    else:
        raise FileNotFoundError(f"{path}: not a model dir (no serving_server/ and no {SERVER_CONF})")
    client_dir = server_dir.parent / "serving_client"
    stream = server_dir / SERVER_STREAM
    conf = read_conf(stream if stream.is_file() else server_dir / SERVER_CONF)
    config = ModelConfig.load(server_dir) if (server_dir / CONFIG_NAME).is_file() else None
    resolved = name or (config.name if config else entry_name)
    return ModelSpec(resolved, server_dir, client_dir if client_dir.is_dir() else None, conf, config)


class ModelRepository:
    """Named models under one root directory."""

    def __init__(self, root: Path = DEFAULT_ROOT) -> None:
        self.root = Path(root)

    def names(self) -> list[str]:
        """Names of every entry that holds a serving_server dir with a conf file."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _is_server_dir(p / "serving_server"))

    def load(self, name: str) -> ModelSpec:
        """Load entry `name`; KeyError listing the available names if there is none."""
        if name not in self.names():
            raise KeyError(f"no model {name!r} in {self.root}; available: {', '.join(self.names()) or 'none'}")
        return load_spec(self.root / name, name)

    def resolve(self, ref: str) -> ModelSpec:
        """A --model argument: an existing directory path, NAME=DIR (DIR served as NAME, e.g. KServe's
        /mnt/models as the InferenceService's name), else a name in this repository."""
        path = Path(ref)
        if path.is_dir():
            return load_spec(path)
        name, named, where = ref.partition("=")
        if named and _NAME.fullmatch(name):
            if not Path(where).is_dir():
                raise FileNotFoundError(f"--model {ref}: {where} is not a directory")
            return load_spec(Path(where), name)
        return self.load(ref)
