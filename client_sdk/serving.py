"""ServingClient: a drop-in for paddle_serving_client.Client / HttpClient that installs on current Python."""

from __future__ import annotations

import gzip
import json
import os
import warnings
from collections.abc import Iterable, Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np

from client_sdk.errors import InvalidInput, SegServingError, error_for
from client_sdk.retry import RetryPolicy, with_retries
from client_sdk.tensors import request_json, request_proto, response_to_dict
from client_sdk.transport import (
    API_KEY_ENV,
    MAX_MESSAGE,
    Verify,
    base_url,
    grpc_channel_args,
    grpc_error,
    http_verify,
    retry_after,
    transport_error,
)
from segcore.defaults import DEFAULT_PORT
from segcore.dtypes import CODE_TO_DTYPE
from segcore.proto.general_model_service_pb2 import Response
from segcore.servingconf import ServingConf, VarSpec, read_conf

INFERENCE_METHOD = "/baidu.paddle_serving.predictor.general_model.GeneralModelService/inference"
GZIP_MIN_BYTES = 512


class UnknownFetchName(InvalidInput):
    """A requested fetch name is neither an alias nor a real output name of the model."""


class ServingClient:
    """Paddle Serving's client API: load_client_config, connect, predict -> {alias: numpy array}.

    Protobuf over HTTP by default; set_use_grpc_client(True) for gRPC, set_http_proto(False) for JSON.
    Unlike the originals it accepts hostnames, raises typed errors instead of returning None, and resolves a
    legacy fetch name (e.g. 'save_infer_model/scale_0.tmp_1') to the model's only output, with a warning.
    connect("https://host:9393") speaks TLS (HTTP and gRPC), checking the server against `verify` (True: the
    system's CAs, or a CA bundle path); `api_key` (default: env SEGSERVING_API_KEY) is sent as a Bearer token.
    A request refused as busy (429) or unavailable (503) is sent again up to `retries` times within timeout_ms.
    """

    def __init__(self, ip: str = "127.0.0.1", port: str | int = DEFAULT_PORT,
                 service_name: str = "/GeneralModelService/inference", timeout_ms: int = 200_000,
                 retries: int = 2, model: str | None = None, api_key: str | None = None,
                 verify: Verify = True) -> None:  # fmt: skip
        self._endpoint = f"{ip}:{port}"
        self.service_name = service_name
        self.timeout_ms = timeout_ms
        self.retries = retries
        self.verify = verify  # for an https:// endpoint: True (system CAs), a CA bundle path, or False (HTTP only)
        self.model = model  # which model on a multi-model SegServing server (default: its first)
        self._conf: ServingConf | None = None
        self._http_proto, self._grpc = True, False
        self._compress_request, self._compress_response = False, True
        key = api_key or os.environ.get(API_KEY_ENV)  # Paddle's Client has no key: the env var needs no code change
        self._headers: dict[str, str] = {"Authorization": f"Bearer {key}"} if key else {}
        self._http: httpx.Client | None = None
        self._channel: grpc.Channel | None = None

    # ----- configuration (Paddle Serving's method names) -----
    def load_client_config(self, path: str | PathLike[str] | list[str | PathLike[str]]) -> None:
        """A serving_client_conf.prototxt (or .stream.prototxt, or its dir); a list = [first model, last model]."""
        paths = [Path(p) for p in path] if isinstance(path, list) else [Path(path)]
        first, last = read_conf(paths[0]), read_conf(paths[-1])
        self._conf = ServingConf(first.feeds, last.fetches)

    def connect(self, endpoints: str | Iterable[str] | None = None, encryption: bool = False) -> None:
        """Use the first of `endpoints` ('host:port' or a URL; hostnames and IPv6 in brackets work)."""
        if encryption:
            raise NotImplementedError("model encryption is not supported; serve unencrypted models over TLS")
        if endpoints is not None:
            self._endpoint = endpoints if isinstance(endpoints, str) else next(iter(endpoints))
        self.close()

    def set_http_proto(self, flag: bool) -> None:
        self._http_proto = bool(flag)

    def set_use_grpc_client(self, flag: bool) -> None:
        self._grpc = bool(flag)

    def set_request_compress(self, flag: bool) -> None:
        self._compress_request = bool(flag)

    def set_response_compress(self, flag: bool) -> None:
        self._compress_response = bool(flag)

    def set_timeout_ms(self, timeout_ms: int) -> None:
        self.timeout_ms = int(timeout_ms)
        self.close()

    set_rpc_timeout_ms = set_timeout_ms

    def add_http_headers(self, headers: Mapping[str, str]) -> None:
        self._headers.update(headers)
        self.close()

    def get_feed_names(self) -> list[str]:
        return [v.alias for v in self._require_conf().feeds]

    def get_fetch_names(self) -> list[str]:
        return [v.alias for v in self._require_conf().fetches]

    # ----- prediction -----
    def predict(self, feed: Mapping[str, Any] | list[Mapping[str, Any]], fetch: str | list[str] | None = None,
                batch: bool = False, need_variant_tag: bool = False, log_id: int = 0) -> dict[str, Any]:  # fmt: skip
        """Run the model. feed: {alias or name: array}; batch=False adds the leading batch dim of 1.
        Returns {alias: array} (also under each requested name that differs from the alias)."""
        conf = self._require_conf()
        feeds = self._feeds(feed, batch, conf)
        requested = [fetch] if isinstance(fetch, str) else list(fetch or [])
        resolved = []
        for name in requested:  # a loop, not a comprehension: the warning's stacklevel must reach the caller
            resolved.append(self._fetch_var(name, conf))
        aliases = [v.alias for v in resolved]
        policy, timeout = RetryPolicy(self.retries), self.timeout_ms / 1000
        if self._grpc:
            body = request_proto(feeds, aliases, log_id)
            result = with_retries(lambda left: self._grpc_call(body, left), policy, timeout)
        else:
            result = with_retries(lambda left: self._http_call(feeds, aliases, log_id, left), policy, timeout)
        for name, var in zip(requested, resolved, strict=True):
            if name != var.alias and var.alias in result:
                result[name] = result[var.alias]
        return result

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    release = close

    def __enter__(self) -> ServingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- internals -----
    def _require_conf(self) -> ServingConf:
        if self._conf is None:
            raise RuntimeError("call load_client_config(path) first")
        return self._conf

    @staticmethod
    def _feeds(feed: Mapping[str, Any] | list[Mapping[str, Any]], batch: bool,
               conf: ServingConf) -> list[tuple[VarSpec, np.ndarray]]:  # fmt: skip
        samples = feed if isinstance(feed, list) else [feed]
        by_key = {v.alias: v for v in conf.feeds} | {v.name: v for v in conf.feeds}
        columns: dict[str, list[np.ndarray]] = {}
        for sample in samples:
            for key, value in sample.items():
                if key.endswith(".lod"):
                    raise InvalidInput("lod inputs are not supported by SegServing")
                if key not in by_key:
                    raise InvalidInput(f"unknown feed name {key!r}; the model's feeds: {', '.join(by_key)}")
                var = by_key[key]
                dtype = CODE_TO_DTYPE.get(var.type_code)
                array = np.asarray(value, dtype=dtype)
                if not batch or len(samples) > 1:
                    array = array[None]
                columns.setdefault(var.alias, []).append(array)
        missing = [v.alias for v in conf.feeds if v.alias not in columns]
        if missing:
            raise InvalidInput(f"missing feed(s): {', '.join(missing)}")
        return [(v, np.concatenate(columns[v.alias]) if len(columns[v.alias]) > 1 else columns[v.alias][0])
                for v in conf.feeds]  # fmt: skip

    @staticmethod
    def _fetch_var(name: str, conf: ServingConf) -> VarSpec:
        for var in conf.fetches:
            if name in (var.alias, var.name):
                return var
        names = ", ".join(v.alias if v.alias == v.name else f"{v.alias} ({v.name})" for v in conf.fetches)
        if len(conf.fetches) == 1:
            var = conf.fetches[0]
            warnings.warn(f"fetch name {name!r} is not in this model; using its only output {var.alias!r} "
                          f"(real name {var.name!r})", stacklevel=3)  # fmt: skip
            return var
        raise UnknownFetchName(f"unknown fetch name {name!r}; this model's outputs: {names}", 400)

    def _http_call(self, feeds: list[tuple[VarSpec, np.ndarray]], fetch: list[str], log_id: int,
                   timeout: float) -> dict[str, Any]:  # fmt: skip
        if self._http is None:
            self._http = httpx.Client(base_url=base_url(self._endpoint), headers=self._headers,
                                      verify=http_verify(self.verify))  # fmt: skip
        if self._http_proto:
            body, content_type = request_proto(feeds, fetch, log_id), "application/proto"
        else:
            body, content_type = json.dumps(request_json(feeds, fetch, log_id)).encode(), "application/json"
        headers = {"Content-Type": content_type, "Accept-Encoding": "gzip" if self._compress_response else "identity"}
        if self._compress_request and len(body) > GZIP_MIN_BYTES:
            body, headers["Content-Encoding"] = gzip.compress(body, compresslevel=1), "gzip"
        try:
            params = {"model": self.model} if self.model else None
            response = self._http.post(self.service_name, content=body, headers=headers, params=params,
                                       timeout=max(timeout, 0.001))  # fmt: skip
        except httpx.TransportError as exc:
            raise transport_error(exc, timeout) from None
        proto = response.headers.get("content-type", "").startswith("application/proto")
        if response.status_code != 200:
            raise self._error(response, proto)
        return response_to_dict(Response.FromString(response.content) if proto else response.json())

    @staticmethod
    def _error(response: httpx.Response, proto: bool) -> SegServingError:
        code = ""
        try:  # a protobuf Response has no code field: its err_no is the HTTP status
            if proto:
                message = Response.FromString(response.content).err_msg
            else:
                doc = response.json()
                message, code = doc.get("err_msg"), str(doc.get("code", ""))
        except Exception:  # not a Response body (e.g. a proxy's error page)
            message = None
        return error_for(code, response.status_code, message or response.text, retry_after(response.headers))

    def _grpc_call(self, body: bytes, timeout: float) -> dict[str, Any]:
        if self._channel is None:
            options = [("grpc.max_receive_message_length", MAX_MESSAGE), ("grpc.max_send_message_length", MAX_MESSAGE)]
            target, credentials = grpc_channel_args(self._endpoint, self.verify)
            self._channel = (grpc.secure_channel(target, credentials, options=options) if credentials
                             else grpc.insecure_channel(target, options=options))  # fmt: skip
        call: grpc.UnaryUnaryMultiCallable[bytes, Response] = self._channel.unary_unary(
            INFERENCE_METHOD, request_serializer=None, response_deserializer=Response.FromString
        )
        metadata = tuple((k.lower(), v) for k, v in self._headers.items()) + (
            (("model", self.model),) if self.model else ()
        )
        try:
            return response_to_dict(call(body, timeout=max(timeout, 0.001), metadata=tuple(metadata)))
        except grpc.RpcError as exc:
            raise grpc_error(exc) from None
