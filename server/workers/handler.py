"""Runs a batch of jobs for one model inside a worker: parse, group by input shape, infer, encode."""

from __future__ import annotations

import gzip
import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from segcore.engines import Engine
from segcore.images import ImageLimits
from segcore.repository import ModelSpec
from server.codecs import kserve, oip_grpc, paddle_tensor
from server.codecs.errors import error_body
from server.errors import DeadlineExceeded, InternalError, InvalidInput, ServingError, TooLarge
from server.jobs import Job, JobKind, Result
from server.workers.idphoto_job import IdPhotoJobCodec
from server.workers.image_job import ImageJobCodec
from server.workers.oip_job import OipJobCodec

GZIP_MIN_BYTES = 512  # brpc's http_body_compress_threshold


@dataclass
class _Prepared:
    job: Job
    feeds: dict[str, np.ndarray]
    finish: Callable[[dict[str, np.ndarray], dict[str, float]], tuple[bytes, str]]
    start_us: int
    timings: dict[str, float] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # response headers the finish step adds

    @property
    def batch(self) -> int:
        return next(iter(self.feeds.values())).shape[0]


log = logging.getLogger("server.worker")


def _detail(exc: Exception) -> str:
    """An unexpected exception for the log (never for a response body): its type and text on one line."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:2000]


_INFLATE_STEP = 2**20


def gunzip(data: bytes, limit: int) -> bytes:
    """Decompress a gzip body, refusing (413) to inflate past `limit` bytes. Once the first step shows a valid
    stream, the size its trailer declares is checked (an honest bomb is refused after inflating one step); the
    bytes are inflated a step at a time and counted, so a trailer that lies costs at most `limit` bytes."""
    too_large = TooLarge(f"gzip body inflates past the server's limit of {limit} bytes (--max_body_size)")
    if not data.startswith(b"\x1f\x8b"):
        raise InvalidInput("Content-Encoding is gzip but the body is not valid gzip: no gzip header")
    declared = int.from_bytes(data[-4:], "little") if len(data) >= 18 else 0  # ISIZE: inflated size mod 2**32
    inflater = zlib.decompressobj(wbits=31)
    parts, size, pending = [], 0, data
    try:
        while not inflater.eof:
            part = inflater.decompress(pending, _INFLATE_STEP)
            pending = inflater.unconsumed_tail
            if not part and not pending:  # no input left and nothing more comes out: the stream stops short
                break
            size += len(part)
            if size > limit or (declared > limit and not inflater.eof):
                raise too_large
            parts.append(part)
    except zlib.error as exc:
        raise InvalidInput(f"Content-Encoding is gzip but the body is not valid gzip: {exc}") from None
    if not inflater.eof:
        raise InvalidInput("gzip body is truncated")
    return b"".join(parts)


class JobHandler:
    """Everything a worker does with a batch of jobs; transport-free and engine-agnostic."""

    def __init__(self, spec: ModelSpec, engine: Engine, limits: ImageLimits, max_body_size: int = 512 * 2**20) -> None:
        self.spec = spec
        self.max_body_size = max_body_size
        self.engine = engine
        self.input_shape = spec.config.input_shape if spec.config else None
        self.images = ImageJobCodec(spec, limits) if spec.config and spec.config.preprocess else None
        self.id_photos = IdPhotoJobCodec(self.images) if self.images else None
        self.oip = OipJobCodec(spec, self.input_shape, self.images)

    def handle(self, jobs: list[Job]) -> list[Result]:
        """One result per job, in order. Jobs whose inputs share shapes run as one engine batch."""
        results: dict[int, Result] = {}
        groups: dict[tuple[Any, ...], list[_Prepared]] = {}
        now = time.monotonic()
        for job in jobs:
            if job.deadline < now:
                results[job.id] = self._error(job, DeadlineExceeded("request deadline passed while queued"))
                continue
            t0 = time.perf_counter()
            try:
                if job.transport.gzip_body:
                    job.body = gunzip(job.body, self.max_body_size)
                prepared = self._prepare(job)
            except ServingError as exc:
                results[job.id] = self._error(job, exc)
                continue
            except Exception as exc:  # input no check foresaw: answer this job, keep the worker (and its batch)
                log.warning("request %s: malformed: %s", job.request_id, _detail(exc))
                error = InvalidInput(f"malformed request: the server could not read it (request id {job.request_id})")
                results[job.id] = self._error(job, error)
                continue
            prepared.timings["preprocess"] = time.perf_counter() - t0
            key = tuple((name, a.shape[1:], a.dtype.str) for name, a in sorted(prepared.feeds.items()))
            groups.setdefault(key, []).append(prepared)
        for group in groups.values():
            for batch in self._run(group):
                results.update(batch)
        return [results[job.id] for job in jobs]

    def _run(self, group: list[_Prepared]) -> list[dict[int, Result]]:
        feeds = {
            name: np.concatenate([p.feeds[name] for p in group]) if len(group) > 1 else group[0].feeds[name]
            for name in group[0].feeds
        }
        total = sum(p.batch for p in group)
        t0 = time.perf_counter()
        try:
            outputs = self.engine.run(feeds)
        except Exception as exc:  # engines raise their own exception types; their text stays in the log
            ids = ", ".join(p.job.request_id for p in group)
            log.error("request %s: inference failed: %s", ids, _detail(exc))
            return [
                {p.job.id: self._error(p.job, InternalError(f"inference failed (request id {p.job.request_id})"))}
                for p in group
            ]
        infer = time.perf_counter() - t0
        if len(group) > 1 and any(v.ndim == 0 or v.shape[0] != total for v in outputs.values()):
            return [r for p in group for r in self._run([p])]  # outputs not batch-major: run one by one
        done, offset = [], 0
        for p in group:
            sliced = {k: v[offset : offset + p.batch] for k, v in outputs.items()} if len(group) > 1 else outputs
            offset += p.batch
            p.timings["inference"] = infer
            t1 = time.perf_counter()
            try:
                body, content_type = p.finish(sliced, p.timings)
            except ServingError as exc:
                done.append({p.job.id: self._error(p.job, exc)})
                continue
            except Exception as exc:  # a failure encoding one result must not take the worker and its batch down
                log.error("request %s: encoding the result failed: %s", p.job.request_id, _detail(exc))
                error = InternalError(f"encoding the result failed (request id {p.job.request_id})")
                done.append({p.job.id: self._error(p.job, error)})
                continue
            headers = dict(p.headers)
            if p.job.transport.gzip_reply and len(body) >= GZIP_MIN_BYTES and not content_type.startswith("image/"):
                body, headers = gzip.compress(body, compresslevel=1), {"Content-Encoding": "gzip"}
            p.timings["postprocess"] = time.perf_counter() - t1
            done.append({p.job.id: Result(p.job.id, 200, body, content_type, headers=headers, timings=p.timings,
                                          batch_size=total)})  # fmt: skip
        return done

    def _prepare(self, job: Job) -> _Prepared:
        start_us = time.time_ns() // 1000
        conf = self.spec.conf
        if job.kind in (JobKind.PADDLE_PROTO, JobKind.PADDLE_JSON):
            proto = job.kind is JobKind.PADDLE_PROTO
            parse = paddle_tensor.parse_proto if proto else paddle_tensor.parse_json
            request = parse(job.body, conf, self.input_shape)
            encode = paddle_tensor.response_proto if proto else paddle_tensor.response_json
            content_type = "application/proto" if proto else "application/json"

            def finish_tensor(outputs: dict[str, np.ndarray], _: dict[str, float]) -> tuple[bytes, str]:
                return encode(outputs, request, (start_us, time.time_ns() // 1000)), content_type

            return _Prepared(job, request.feeds, finish_tensor, start_us)
        if job.kind in (JobKind.KSERVE_V2, JobKind.OIP_GRPC):
            return self._prepare_oip(job, start_us)
        if self.images is None:
            raise InvalidInput(f"model {self.spec.name!r} has no preprocessing config (converted without deploy.yaml): "
                "use the tensor APIs"
            )  # fmt: skip
        codec = self.id_photos if job.kind is JobKind.ID_PHOTO else self.images
        assert codec is not None
        feeds, finish = codec.prepare(job)
        return _Prepared(job, feeds, finish, start_us)

    def _prepare_oip(self, job: Job, start_us: int) -> _Prepared:
        grpc = job.kind is JobKind.OIP_GRPC
        if grpc:
            request = oip_grpc.parse_request(job.body)
            request.model = self.spec.name
        else:
            request = kserve.parse_request(self.spec.name, job.body, job.transport.oip_header_length)
        feeds, tensors = self.oip.prepare(request)
        headers: dict[str, str] = {}

        def finish_oip(outputs: dict[str, np.ndarray], _: dict[str, float]) -> tuple[bytes, str]:
            if grpc:
                return oip_grpc.response(request, tensors(outputs)), "application/grpc"
            body, content_type, extra = kserve.response(request, tensors(outputs))
            headers.update(extra)
            return body, content_type

        return _Prepared(job, feeds, finish_oip, start_us, headers=headers)

    def _error(self, job: Job, error: ServingError) -> Result:
        body, content_type = error_body(error, job.kind)
        return Result(job.id, error.status, body, content_type, message=error.message, code=error.code)
