"""A test client that puts on the wire exactly what Paddle Serving 0.9's stock `HttpClient` sends.

Written from the protocol facts in the compat doc (sections 3.1-3.8), not from Paddle Serving's code:

* http+json: POST /GeneralModelService/inference, `Content-Type: application/json`, body `json.dumps` of the
  Request dict with the key order fetch_var_names, log_id, tensor[<data key>, shape, elem_type, name, alias_name];
  returns the server's JSON as a plain dict.
* http+proto: same URL, `Content-Type: application/proto`, body `Request.SerializeToString()`; returns a Response.
* grpc: `GeneralModelServiceStub(grpc.insecure_channel("ipv4:IP:PORT", 512 MiB message limits)).inference(
  Request, timeout=timeout_ms / 1000)`; returns a Response.

Feeds are keyed by alias as in the client conf; `name` on the wire is the conf's real name, `elem_type` the conf's
feed_type; a numpy feed's shape is its own shape, with a leading 1 inserted when batch=False. Like the stock client,
fetch names not in the conf are dropped (`filter_fetch=False` sends them as given, to test the server's checks).

Differences from the stock client, all test-side conveniences: errors raise (requests.HTTPError / grpc.RpcError)
instead of printing and returning None; `model=` adds SegServing's model selection (`?model=` on HTTP, the
`model` metadata key on gRPC); `post()` returns the raw HTTP response for header checks.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import requests

from segcore.proto import general_model_service_pb2_grpc
from segcore.proto.general_model_service_pb2 import Request, Response
from segcore.servingconf import read_conf

MAX_BODY = 512 * 2**20
# elem_type -> Request data field; the stock client supports only these feed types
PROTO_DATA_KEYS = {0: "int64_data", 1: "float_data", 2: "int_data", 20: "data"}
_CONTENT_DTYPES = {5: np.float16, 7: np.uint8, 8: np.int8}
_NUMERIC = {0: ("int64_data", np.int64), 1: ("float_data", np.float32), 2: ("int_data", np.int32)}
_ENDPOINT = re.compile(r"^(?:https?://)?((?:\d{1,3}\.){3}\d{1,3}):(\d+)$")


class PaddleClient:
    """mode: 'json', 'proto' (the stock default) or 'grpc'."""

    def __init__(self, client_conf: str | Path, mode: str = "proto", timeout_ms: int = 20000) -> None:
        if mode not in ("json", "proto", "grpc"):
            raise ValueError(f"mode must be json, proto or grpc, got {mode!r}")
        conf = read_conf(Path(client_conf))
        self.feed_vars = {v.alias: v for v in conf.feeds}
        self.fetch_vars = {v.alias: v for v in conf.fetches}
        self.mode = mode
        self.timeout_ms = timeout_ms
        self.service_name = "/GeneralModelService/inference"
        self.request_compress = False
        self.response_compress = False
        self._ip = self._port = ""
        self._channel: grpc.Channel | None = None
        self._stub: general_model_service_pb2_grpc.GeneralModelServiceStub | None = None

    # ----- connection -----
    def connect(self, endpoint: str) -> None:
        """One "IP:PORT" endpoint (optional http:// prefix); the stock client rejects host names."""
        match = _ENDPOINT.match(endpoint)
        if match is None:
            raise ValueError(f"url not right: {endpoint!r}")
        self._ip, self._port = match.groups()
        if self.mode == "grpc":
            self._channel = grpc.insecure_channel(
                f"ipv4:{self._ip}:{self._port}",
                options=[("grpc.max_receive_message_length", MAX_BODY), ("grpc.max_send_message_length", MAX_BODY)],
            )
            self._stub = general_model_service_pb2_grpc.GeneralModelServiceStub(self._channel)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = self._stub = None

    def __enter__(self) -> PaddleClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        return f"http://{self._ip}:{self._port}{self.service_name}"

    # ----- request building -----
    def _tensors(self, feed: dict[str, Any], batch: bool) -> list[dict[str, Any]]:
        tensors = []
        for alias, value in feed.items():
            var = self.feed_vars[alias]
            key = PROTO_DATA_KEYS[var.type_code]  # KeyError for uint8/fp16 feeds, like the stock client
            if isinstance(value, np.ndarray):
                shape = list(value.shape)
                data = value.flatten().tolist()
                if not batch:
                    shape.insert(0, 1)
            elif isinstance(value, (list, tuple)):
                data = list(value)
                shape = [len(value) if batch else 1, *var.shape]
            else:
                data, shape = [value], list(var.shape)
            tensors.append(
                {key: data, "shape": shape, "elem_type": var.type_code, "name": var.name, "alias_name": var.alias}
            )
        return tensors

    def _fetch_names(self, fetch: list[str] | None, filter_fetch: bool) -> list[str]:
        names = list(fetch or [])
        return [n for n in names if n in self.fetch_vars] if filter_fetch else names

    def request_dict(self, feed: dict[str, Any], fetch: list[str] | None = None, batch: bool = False,
                     log_id: int = 0, filter_fetch: bool = True) -> dict[str, Any]:  # fmt: skip
        """The JSON-mode Request dict, keys in the stock client's order."""
        return {
            "fetch_var_names": self._fetch_names(fetch, filter_fetch),
            "log_id": log_id,
            "tensor": self._tensors(feed, batch),
        }

    def request_proto(self, feed: dict[str, Any], fetch: list[str] | None = None, batch: bool = False,
                      log_id: int = 0, filter_fetch: bool = True) -> Request:  # fmt: skip
        """The proto/gRPC-mode Request message."""
        request = Request(fetch_var_names=self._fetch_names(fetch, filter_fetch), log_id=log_id)
        for t in self._tensors(feed, batch):
            tensor = request.tensor.add()
            key = next(k for k in PROTO_DATA_KEYS.values() if k in t)
            getattr(tensor, key).extend(t[key])
            tensor.shape.extend(t["shape"])
            tensor.elem_type = t["elem_type"]
            tensor.name = t["name"]
            tensor.alias_name = t["alias_name"]
        return request

    # ----- transport -----
    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json" if self.mode == "json" else "application/proto"}
        if self.request_compress:
            headers["Content-Encoding"] = "gzip"
        if self.response_compress:
            headers["Accept-encoding"] = "gzip"
        return headers

    def encode(self, feed: dict[str, Any], fetch: list[str] | None = None, batch: bool = False, log_id: int = 0,
               filter_fetch: bool = True) -> bytes:  # fmt: skip
        """The HTTP body the stock client would send (gzipped when request_compress is set)."""
        if self.mode == "json":
            body = json.dumps(self.request_dict(feed, fetch, batch, log_id, filter_fetch)).encode()
        else:
            body = self.request_proto(feed, fetch, batch, log_id, filter_fetch).SerializeToString()
        return gzip.compress(body) if self.request_compress else body

    def post(self, body: bytes, model: str | None = None) -> requests.Response:
        """POST an already-encoded body with the stock headers (HTTP modes only); the raw response."""
        params = {"model": model} if model else None
        return requests.post(self.url, data=body, headers=self.headers(), params=params,
                             timeout=self.timeout_ms / 1000)  # fmt: skip

    def call_grpc(self, request: Request, model: str | None = None, method: str = "inference") -> Response:
        assert self._stub is not None, "connect() first"
        metadata = (("model", model),) if model else None
        return getattr(self._stub, method)(request, timeout=self.timeout_ms / 1000, metadata=metadata)

    def predict(self, feed: dict[str, Any], fetch: list[str] | None = None, batch: bool = False, log_id: int = 0,
                model: str | None = None, filter_fetch: bool = True) -> Response | dict[str, Any]:  # fmt: skip
        """What the stock predict() returns: a Response (proto, grpc) or the JSON dict (json)."""
        if self.mode == "grpc":
            return self.call_grpc(self.request_proto(feed, fetch, batch, log_id, filter_fetch), model)
        reply = self.post(self.encode(feed, fetch, batch, log_id, filter_fetch), model)
        reply.raise_for_status()
        if reply.headers.get("Content-Type") == "application/proto":
            return Response.FromString(reply.content)
        return reply.json()


def _getter(obj: Any):
    if isinstance(obj, dict):
        return lambda key, default=None: obj.get(key, default)
    return lambda key, default=None: getattr(obj, key)


def tensor_array(tensor: Any) -> np.ndarray:
    """One Tensor (protobuf or JSON dict) as a numpy array of its shape; elem_type absent in JSON means INT64."""
    get = _getter(tensor)
    elem_type = get("elem_type", 0)
    if elem_type in _NUMERIC:
        field, dtype = _NUMERIC[elem_type]
        array = np.array(list(get(field, [])), dtype=dtype)
    elif elem_type in _CONTENT_DTYPES:
        content = get("tensor_content", b"")
        array = np.frombuffer(content if isinstance(content, bytes) else content.encode("latin-1"),
                              _CONTENT_DTYPES[elem_type])  # fmt: skip
    else:
        raise ValueError(f"elem_type {elem_type} is not handled")
    shape = list(get("shape", []))
    return array.reshape(shape) if shape else array


def response_to_dict(response: Response | dict[str, Any]) -> dict[str, np.ndarray]:
    """{alias: array} over every output tensor (plus "alias.lod" where a lod is present), like brpc Client.predict
    for one model."""
    outputs = response["outputs"] if isinstance(response, dict) else response.outputs
    result: dict[str, np.ndarray] = {}
    for model_output in outputs:
        for tensor in _getter(model_output)("tensor", []):
            get = _getter(tensor)
            key = get("alias_name") or get("name")
            result[key] = tensor_array(tensor)
            lod = list(get("lod", []) or [])
            if lod:
                result[f"{key}.lod"] = np.array(lod, np.int32)
    return result
