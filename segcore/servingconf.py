"""Read and write Paddle Serving's GeneralModelConfig files (text and binary "stream" forms)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import text_format

from segcore.proto.general_model_config_pb2 import FeedVar, FetchVar, GeneralModelConfig

SERVER_CONF = "serving_server_conf.prototxt"
SERVER_STREAM = "serving_server_conf.stream.prototxt"
CLIENT_CONF = "serving_client_conf.prototxt"
CLIENT_STREAM = "serving_client_conf.stream.prototxt"


@dataclass(frozen=True)
class VarSpec:
    """One feed or fetch variable: real name, alias, type code, conf shape and lod flag."""

    name: str
    alias: str
    type_code: int
    shape: tuple[int, ...] = ()
    is_lod: bool = False


@dataclass(frozen=True)
class ServingConf:
    """The feed and fetch variables of a served model, in conf order."""

    feeds: tuple[VarSpec, ...]
    fetches: tuple[VarSpec, ...] = field(default_factory=tuple)

    def to_proto(self) -> GeneralModelConfig:
        conf = GeneralModelConfig()
        for v in self.feeds:
            conf.feed_var.append(
                FeedVar(name=v.name, alias_name=v.alias, is_lod_tensor=v.is_lod, feed_type=v.type_code, shape=v.shape)
            )
        for v in self.fetches:
            conf.fetch_var.append(
                FetchVar(name=v.name, alias_name=v.alias, is_lod_tensor=v.is_lod, fetch_type=v.type_code, shape=v.shape)
            )
        return conf

    @classmethod
    def from_proto(cls, conf: GeneralModelConfig) -> ServingConf:
        feeds = tuple(
            VarSpec(f.name, f.alias_name or f.name, f.feed_type, tuple(f.shape), f.is_lod_tensor) for f in conf.feed_var
        )
        fetches = tuple(
            VarSpec(f.name, f.alias_name or f.name, f.fetch_type, tuple(f.shape), f.is_lod_tensor)
            for f in conf.fetch_var
        )
        return cls(feeds, fetches)


def conf_shape(dims: list[int] | tuple[int, ...], is_lod: bool) -> tuple[int, ...]:
    """Paddle Serving's shape rule: lod vars get [-1]; otherwise every dim < 0 is dropped."""
    if is_lod:
        return (-1,)
    return tuple(int(d) for d in dims if d >= 0)


def write_conf(conf: ServingConf, directory: Path, client: bool) -> None:
    """Write the text and stream files of `conf` into `directory` (server or client names)."""
    text_name, stream_name = (CLIENT_CONF, CLIENT_STREAM) if client else (SERVER_CONF, SERVER_STREAM)
    proto = conf.to_proto()
    (directory / text_name).write_text(text_format.MessageToString(proto))
    (directory / stream_name).write_bytes(proto.SerializeToString())


def read_conf(path: Path) -> ServingConf:
    """Read a conf file: a `.stream.prototxt` (binary), a `.prototxt` (text), or a directory holding either."""
    path = Path(path)
    if path.is_dir():
        for name in (SERVER_CONF, CLIENT_CONF, SERVER_STREAM, CLIENT_STREAM):
            if (path / name).is_file():
                return read_conf(path / name)
        raise FileNotFoundError(f"{path}: no serving_server_conf.prototxt or serving_client_conf.prototxt here")
    proto = GeneralModelConfig()
    data = path.read_bytes()
    try:
        if path.name.endswith(".stream.prototxt"):
            proto.ParseFromString(data)
        else:
            text_format.Parse(data.decode("utf-8"), proto)
    except (text_format.ParseError, UnicodeDecodeError, Exception) as exc:  # protobuf raises DecodeError too
        raise ValueError(f"{path}: not a valid GeneralModelConfig: {exc}") from exc
    if not proto.feed_var:
        raise ValueError(f"{path}: GeneralModelConfig has no feed_var")
    return ServingConf.from_proto(proto)
