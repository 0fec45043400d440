"""Drop-ins for paddle_serving_client 0.9 that install on current Python: `Client` (brpc-style, {alias: array}
results, A/B variants) and `HttpClient` (its raw Response / JSON returns); `ServingClient` is `Client`'s name in
earlier SegServing releases. Several endpoints are balanced round-robin, and one that cannot be reached is skipped
while another answers."""

from __future__ import annotations

import gzip
import json
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np

from client_sdk.endpoints import Policy, Router, failover
from client_sdk.errors import InvalidInput, SegServingError, Unavailable, error_for
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
CONNECT_TIMEOUT_S = 2.0  # brpc's connect_timeout_ms: a host that does not answer is left for the next one
Raw = Response | dict[str, Any]  # a Response message, or Paddle Serving's JSON Response as a dict


class UnknownFetchName(InvalidInput):
    """A requested fetch name is neither an alias nor a real output name of the model."""


class ServingClient:
    """Paddle Serving's brpc `Client` API: load_client_config, connect, predict -> {alias: numpy array}.

    Protobuf over HTTP by default; set_use_grpc_client(True) for gRPC, set_http_proto(False) for JSON.
    connect([...]) with several endpoints balances requests across them round-robin; an endpoint that cannot be
    reached (or answers 503) is skipped for a growing cooldown and the request goes to the next one.
    add_variant(tag, endpoints, weight) splits traffic by weight, and predict(..., need_variant_tag=True) returns
    [result, tag] as Paddle Serving's does. Unlike the originals it accepts hostnames, raises typed errors instead of
    returning None, and resolves a legacy fetch name (e.g. 'save_infer_model/scale_0.tmp_1') to the model's only
    output, with a warning. connect("https://host:9393") speaks TLS (HTTP and gRPC), checking the server against
    `verify` (True: the system's CAs, or a CA bundle path); `api_key` (default: env SEGSERVING_API_KEY) is sent as
    a Bearer token. A request refused as busy (429) or unavailable (503) is sent again up to `retries` times within
    timeout_ms.
    """

    def __init__(self, ip: str | Sequence[str] = "127.0.0.1", port: str | int = DEFAULT_PORT,
                 service_name: str = "/GeneralModelService/inference", timeout_ms: int = 200_000,
                 retries: int = 2, model: str | None = None, api_key: str | None = None,
                 verify: Verify = True, balance: Policy = "round_robin") -> None:  # fmt: skip
        """`ip` may be a list of endpoints ('host:port' or URLs): the same as connect(that list)."""
        self._endpoints = [f"{ip}:{port}"] if isinstance(ip, str) else list(ip)  # connect() without endpoints
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
        self._router = Router(policy=balance)
        self._variants_added = False
        self._http: httpx.Client | None = None
        self._channels: dict[str, grpc.Channel] = {}
        if not isinstance(ip, str):
            self.connect()

    # ----- configuration (Paddle Serving's method names) -----
    def load_client_config(self, path: str | PathLike[str] | list[str | PathLike[str]]) -> None:
        """A serving_client_conf.prototxt (or .stream.prototxt, or its dir); a list = [first model, last model]."""
        paths = [Path(p) for p in path] if isinstance(path, list) else [Path(path)]
        first, last = read_conf(paths[0]), read_conf(paths[-1])
        self._conf = ServingConf(first.feeds, last.fetches)

    def add_variant(self, tag: str, cluster: Iterable[str], variant_weight: float) -> None:
        """A/B testing: send `variant_weight` / (sum of weights) of the requests to the endpoints in `cluster`."""
        self._router.add(str(tag), [str(e) for e in cluster], variant_weight)
        self._variants_added = True
        self.close()

    def connect(self, endpoints: str | Iterable[str] | None = None, encryption: bool = False) -> None:
        """Send requests to `endpoints` ('host:port' or URLs; hostnames and IPv6 in brackets work), balanced
        round-robin; without endpoints, to the variants added, or else to the constructor's ip:port."""
        if encryption:
            raise NotImplementedError("model encryption is not supported; serve unencrypted models over TLS")
        addresses = [endpoints] if isinstance(endpoints, str) else list(endpoints or [])
        if self._variants_added:
            if addresses:
                warnings.warn(f"connect({addresses}) ignored: the variants added with add_variant are used",
                              stacklevel=2)  # fmt: skip
        else:
            self._router.clear()
            self._router.add(f"default_tag_{id(self)}", addresses or self._endpoints)
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

    def set_service_name(self, service_name: str) -> None:
        self.service_name = service_name

    def add_http_headers(self, headers: Mapping[str, str]) -> None:
        self._headers.update(headers)
        self.close()

    def get_feed_names(self) -> list[str]:
        return [v.alias for v in self._require_conf().feeds]

    def get_fetch_names(self) -> list[str]:
        return [v.alias for v in self._require_conf().fetches]

    # ----- prediction -----
    def predict(self, feed: Any, fetch: str | list[str] | None = None, batch: bool = False,
                need_variant_tag: bool = False, log_id: int = 0) -> Any:  # fmt: skip
        """Run the model. feed: {alias or name: array} (a list of them: a batch), or for a one-input model the
        array itself; batch=False adds the leading batch dim of 1. Returns {alias: array} (also under each
        requested name that differs from the alias), or [that, variant tag] with need_variant_tag=True."""
        conf = self._require_conf()
        requested = [fetch] if isinstance(fetch, str) else list(fetch or [])
        resolved = []
        for name in requested:  # a loop, not a comprehension: the warning's stacklevel must reach the caller
            resolved.append(self._fetch_var(name, conf))
        raw, tag = self._exchange(self._feeds(feed, batch, conf), [v.alias for v in resolved], log_id)
        result = response_to_dict(raw)
        for name, var in zip(requested, resolved, strict=True):
            if name != var.alias and var.alias in result:
                result[name] = result[var.alias]
        return [result, tag] if need_variant_tag else result

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()

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
    def _feeds(feed: Any, batch: bool, conf: ServingConf) -> list[tuple[VarSpec, np.ndarray]]:
        by_key = {v.alias: v for v in conf.feeds} | {v.name: v for v in conf.feeds}
        if isinstance(feed, Mapping):
            samples = [feed]
        elif isinstance(feed, list | tuple) and feed and all(isinstance(s, Mapping) for s in feed):
            samples = list(feed)
        elif len(conf.feeds) == 1:  # Paddle Serving's HttpClient: a bare value feeds a one-input model
            samples = [{conf.feeds[0].alias: feed}]
        else:
            raise InvalidInput(f"feed must be a dict {{name: array}} for a model with {len(conf.feeds)} inputs")
        columns: dict[str, list[np.ndarray]] = {}
        for sample in samples:
            keys = [k for k in sample if not k.endswith(".lod")]
            if len(sample) == 1 and len(conf.feeds) == 1 and keys and keys[0] not in by_key:
                # Paddle Serving's server takes feed tensors by position: a one-input model answers whatever the
                # single tensor is called, and scripts written against it may carry a stale name
                var = conf.feeds[0]
                warnings.warn(f"feed name {keys[0]!r} is not in this model; using its only input {var.alias!r}",
                              stacklevel=4)  # fmt: skip
                sample = {var.alias: sample[keys[0]]}
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

    def _exchange(self, feeds: list[tuple[VarSpec, np.ndarray]], fetch: list[str], log_id: int) -> tuple[Raw, str]:
        """The server's raw answer and the tag of the variant that gave it, within timeout_ms and `retries`."""
        if self._grpc:
            body, content_type = request_proto(feeds, fetch, log_id), ""
        elif self._http_proto:
            body, content_type = request_proto(feeds, fetch, log_id), "application/proto"
        else:
            body, content_type = json.dumps(request_json(feeds, fetch, log_id)).encode(), "application/json"
        if not self._router:
            self.connect()
        call = self._grpc_call if self._grpc else self._http_sender(content_type)

        def send(endpoint: str, left: float) -> Raw:
            return call(endpoint, body, left)

        return with_retries(lambda left: failover(self._router, send, left), RetryPolicy(self.retries),
                            self.timeout_ms / 1000)  # fmt: skip

    def _http_sender(self, content_type: str) -> Callable[[str, bytes, float], Raw]:
        headers = {"Content-Type": content_type, "Accept-Encoding": "gzip" if self._compress_response else "identity"}
        return lambda endpoint, body, timeout: self._http_call(endpoint, body, headers, timeout)

    def _http_call(self, endpoint: str, body: bytes, headers: dict[str, str], timeout: float) -> Raw:
        if self._http is None:
            self._http = httpx.Client(headers=self._headers, verify=http_verify(self.verify))
        headers = dict(headers)
        if self._compress_request and len(body) > GZIP_MIN_BYTES:
            body, headers["Content-Encoding"] = gzip.compress(body, compresslevel=1), "gzip"
        limits = httpx.Timeout(max(timeout, 0.001), connect=min(CONNECT_TIMEOUT_S, max(timeout, 0.001)))
        try:
            params = {"model": self.model} if self.model else None
            response = self._http.post(base_url(endpoint) + self.service_name, content=body, headers=headers,
                                       params=params, timeout=limits)  # fmt: skip
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError,
                httpx.WriteError) as exc:  # fmt: skip
            raise Unavailable(f"cannot reach {endpoint}: {exc or type(exc).__name__}") from None
        except httpx.TransportError as exc:
            raise transport_error(exc, timeout) from None
        proto = response.headers.get("content-type", "").startswith("application/proto")
        if response.status_code != 200:
            raise self._error(response, proto)  # a 503 is Unavailable: failover sends the request on
        return Response.FromString(response.content) if proto else response.json()

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

    def _grpc_call(self, endpoint: str, body: bytes, timeout: float) -> Raw:
        channel = self._channels.get(endpoint)
        if channel is None:
            options = [("grpc.max_receive_message_length", MAX_MESSAGE), ("grpc.max_send_message_length", MAX_MESSAGE)]
            target, credentials = grpc_channel_args(endpoint, self.verify)
            channel = (grpc.secure_channel(target, credentials, options=options) if credentials
                       else grpc.insecure_channel(target, options=options))  # fmt: skip
            self._channels[endpoint] = channel
        call: grpc.UnaryUnaryMultiCallable[bytes, Response] = channel.unary_unary(
            INFERENCE_METHOD, request_serializer=None, response_deserializer=Response.FromString
        )
        metadata = tuple((k.lower(), v) for k, v in self._headers.items()) + (
            (("model", self.model),) if self.model else ()
        )
        try:
            return call(body, timeout=max(timeout, 0.001), metadata=tuple(metadata))
        except grpc.RpcError as exc:
            raise grpc_error(exc) from None  # UNAVAILABLE is Unavailable: failover sends the request on


Client = ServingClient  # paddle_serving_client.Client


class HttpClient(ServingClient):
    """paddle_serving_client.httpclient.HttpClient: predict returns what 0.9's did, the server's `Response`
    message (protobuf over HTTP, the default, and gRPC) or its JSON as a dict (set_http_proto(False)), without
    converting to numpy; errors raise typed exceptions where 0.9 printed and returned None."""

    def __init__(self, ip: str | Sequence[str] = "127.0.0.1", port: str | int = DEFAULT_PORT,
                 service_name: str = "/GeneralModelService/inference", timeout_ms: int = 20_000,
                 **options: Any) -> None:  # fmt: skip
        super().__init__(ip, port, service_name, timeout_ms, **options)

    def predict(self, feed: Any, fetch: str | list[str] | None = None, batch: bool = False,
                need_variant_tag: bool = False, log_id: int = 0) -> Any:  # fmt: skip
        """The server's answer as 0.9's HttpClient returned it; `need_variant_tag` is accepted and, as in 0.9,
        changes nothing. Unknown fetch names are dropped (none left: every output), as 0.9 did."""
        conf = self._require_conf()
        requested = [fetch] if isinstance(fetch, str) else list(fetch or [])
        known = {v.alias: v.alias for v in conf.fetches} | {v.name: v.alias for v in conf.fetches}
        raw, _ = self._exchange(self._feeds(feed, batch, conf), [known[n] for n in requested if n in known], log_id)
        return raw
