"""Messages between the dataplane (front process) and inference workers. Both sides are plain bytes in,
bytes out: parsing and encoding happen in the workers, so they never serialize behind the front's GIL."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class JobKind(str, Enum):
    """What a job's body is and what its result body must be."""

    PADDLE_PROTO = "paddle_proto"  # GeneralModelService Request/Response, protobuf (HTTP or gRPC)
    PADDLE_JSON = "paddle_json"  # GeneralModelService Request/Response, JSON
    IMAGE = "image"  # encoded image in, segmentation out (PNG / JSON / JPEG)
    KSERVE_V2 = "kserve_v2"  # Open Inference Protocol (KServe v2) over HTTP: JSON, or JSON + binary tensor data
    OIP_GRPC = "oip_grpc"  # Open Inference Protocol over gRPC: ModelInferRequest/ModelInferResponse
    ID_PHOTO = "id_photo"  # portrait photo in, ID photo (JPEG/PNG, optional print sheet) out


@dataclass(frozen=True, slots=True)
class Transport:
    """What the transport learned about a request beside the caller's options (never taken from them)."""

    gzip_body: bool = False  # the body is gzip-compressed (Content-Encoding: gzip)
    gzip_reply: bool = False  # the caller takes a gzip-compressed answer (Accept-Encoding: gzip)
    oip_header_length: int | None = None  # KServe v2 binary extension: the JSON header's length in the body


PLAIN = Transport()  # no compression either way


@dataclass(slots=True)
class Job:
    """One request for a worker: the caller's body and options, the transport's facts, and a deadline
    (time.monotonic() based, system-wide on Linux)."""

    id: int
    kind: JobKind
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    transport: Transport = PLAIN
    deadline: float = float("inf")
    enqueued: float = 0.0
    request_id: str = ""  # the front's id for this request: in the log beside any detail an error body leaves out


@dataclass(slots=True)
class Result:
    """A worker's answer: HTTP-style status, body, content type, per-stage timings in seconds, and for a failure
    its message and the error's `code` (server.errors)."""

    id: int
    status: int
    body: bytes
    content_type: str
    message: str = ""
    code: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    batch_size: int = 0
