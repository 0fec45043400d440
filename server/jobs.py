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
    KSERVE_V2 = "kserve_v2"  # KServe v2 inference request/response, JSON
    ID_PHOTO = "id_photo"  # portrait photo in, ID photo (JPEG/PNG, optional print sheet) out


@dataclass(slots=True)
class Job:
    """One request for a worker. deadline is time.monotonic() based (system-wide on Linux)."""

    id: int
    kind: JobKind
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    deadline: float = float("inf")
    enqueued: float = 0.0


@dataclass(slots=True)
class Result:
    """A worker's answer: HTTP-style status, body, content type, and per-stage timings in seconds."""

    id: int
    status: int
    body: bytes
    content_type: str
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    batch_size: int = 0
