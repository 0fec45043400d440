"""Error bodies, one format per protocol: Paddle Serving's Response (protobuf or JSON, `err_no`/`err_msg`) on its
routes, and `{"error": message, "code": code}` JSON everywhere else (KServe v2 asks for `error`). The Paddle JSON
body carries `error` and `code` too, so every JSON error body has them."""

from __future__ import annotations

import orjson

from server.codecs import paddle_tensor
from server.errors import ServingError
from server.jobs import JobKind

PROTO = "application/proto"
JSON = "application/json"


def json_error(error: ServingError) -> bytes:
    return orjson.dumps({"error": error.message, "code": error.code})


def error_body(error: ServingError, kind: JobKind | None) -> tuple[bytes, str]:
    """(body, content type) of `error` for a request of `kind` (None: a route that is no job kind)."""
    if kind is JobKind.PADDLE_PROTO:
        return paddle_tensor.error_proto(error), PROTO
    if kind is JobKind.PADDLE_JSON:
        return paddle_tensor.error_json(error), JSON
    return json_error(error), JSON
