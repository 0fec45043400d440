"""Comparisons measured in alternation, so that drift on a shared machine hits both sides alike.

- Added latency: one process alternates the same work done in-process with the same request sent to the server,
  at concurrency 1, swapping the order each time. The in-process side is the independent pipeline
  (benchmarks.reference: the photo in, the PNG label map out for the image protocols; its ONNX Runtime session on
  the tensor for the tensor protocols), or with baseline "worker" the server's own worker code on the request
  bytes. `python -m benchmarks.paired SPEC_JSON` prints both medians as JSON.
- Throughput ratios: `alternate` runs closed-loop load against two servers that are both up, in A B B A order,
  and reports the median of the per-round ratios.
"""

from __future__ import annotations

import json
import socket
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# protocol -> (job kind, params of the in-process call, what is sent); the params give the served output
PROTOCOLS: dict[str, tuple[str, dict[str, str], str]] = {
    "image": ("image", {}, "jpeg"),
    "image-grpc": ("image", {"output": "proto"}, "segment_proto"),
    "ps-proto": ("paddle_proto", {}, "ps_proto"),
    "ps-grpc": ("paddle_proto", {}, "ps_proto"),
}
SEGMENT_GRPC = "/segserving.v1.Segmentation/Segment"
PS_GRPC = "/baidu.paddle_serving.predictor.general_model.GeneralModelService/inference"


@dataclass
class LatencySpec:
    """One added-latency measurement."""

    model_dir: str
    model: str  # served name
    target: str  # host:port
    protocol: str  # a key of PROTOCOLS
    jpeg: str
    ps_proto: str
    segment_proto: str
    engine: str = "onnxruntime"
    duration: float = 10.0
    warmup: float = 1.0
    baseline: str = "independent"  # independent | worker


class RawHttp:
    """A blocking keep-alive HTTP/1.1 client as light as benchmarks.loadgen's: the request is built once, the
    answer parsed by httptools' C parser, so that the added latency is the server's rather than the client's
    (http.client's header parsing alone cost about 0.45 ms per call on the 2-core benchmark VM)."""

    def __init__(self, host: str, port: int, path: str, content_type: str, body: bytes) -> None:
        self.address = (host, port)
        self.request = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n").encode() + body  # fmt: skip
        self.sock: socket.socket | None = None
        self.buffer = bytearray(1 << 20)
        self.parser: Any = None
        self.done = self.keep_alive = False

    def on_headers_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()  # only meaningful while the message is parsed

    def on_message_complete(self) -> None:
        self.done = True

    def __call__(self) -> int:
        """Send the request, read the whole answer; its HTTP status."""
        import httptools

        if self.sock is None:
            self.sock = socket.create_connection(self.address)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.parser, self.done = httptools.HttpResponseParser(self), False
        self.sock.sendall(self.request)
        view = memoryview(self.buffer)
        while not self.done:
            n = self.sock.recv_into(view)
            if n == 0:
                self.sock.close()
                self.sock = None
                raise ConnectionError("the server closed the connection")
            self.parser.feed_data(view[:n])
        if not self.keep_alive:
            self.sock.close()
            self.sock = None
        return int(self.parser.get_status_code())


def _served_call(spec: LatencySpec, body: bytes) -> Callable[[], None]:
    """A blocking client for the protocol: a raw keep-alive HTTP/1.1 client or a grpc channel, bytes in and out."""
    host, port = spec.target.rsplit(":", 1)
    if spec.protocol.endswith("grpc"):
        import grpc

        limit = 64 * 2**20
        channel = grpc.insecure_channel(spec.target, options=[("grpc.max_receive_message_length", limit),
                                                              ("grpc.max_send_message_length", limit)])  # fmt: skip
        method = channel.unary_unary(SEGMENT_GRPC if spec.protocol == "image-grpc" else PS_GRPC)
        return lambda: method(body)
    path, content_type = ((f"/v1/models/{spec.model}/segment", "image/jpeg") if spec.protocol == "image"
                          else ("/GeneralModelService/inference", "application/proto"))  # fmt: skip
    client = RawHttp(host, int(port), path, content_type, body)

    def call() -> None:
        status = client()
        if status != 200:
            raise RuntimeError(f"{spec.protocol}: HTTP {status}")

    return call


def _independent_call(spec: LatencySpec) -> Callable[[], object]:
    """The independent pipeline on the same photo (image protocols) or its session on the tensor (tensor ones)."""
    from benchmarks.reference import Reference, tune_process

    tune_process(1)
    pipeline, data = Reference(Path(spec.model_dir), 1), Path(spec.jpeg).read_bytes()
    if PROTOCOLS[spec.protocol][0] == "image":
        return lambda: pipeline(data)
    tensor = pipeline.tensor(data)
    return lambda: pipeline.infer(tensor)


def _local_call(spec: LatencySpec) -> Callable[[], object]:
    """The in-process side: the independent pipeline, or the server's worker code on the same request (run as a
    CPU worker is: allocator tuning, one OpenCV thread)."""
    from benchmarks.limit import worker_handler

    if spec.baseline != "worker":
        return _independent_call(spec)
    from server.jobs import Job, JobKind

    handler = worker_handler(spec.model_dir, spec.engine, 1)
    kind, params, source = PROTOCOLS[spec.protocol]
    data = Path(spec.jpeg if source != "ps_proto" else spec.ps_proto).read_bytes()

    def call() -> None:
        result = handler.handle([Job(0, JobKind(kind), data, dict(params))])[0]
        if result.status != 200:
            raise RuntimeError(f"in-process {spec.protocol}: {result.status} {result.message}")

    return call


def added_latency(spec: LatencySpec) -> dict[str, Any]:
    """Medians of the in-process and served calls, alternated; added = served p50 - in-process p50."""
    local = _local_call(spec)
    served = _served_call(spec, Path(getattr(spec, PROTOCOLS[spec.protocol][2])).read_bytes())
    pair = (local, served)
    times: tuple[list[float], list[float]] = ([], [])
    end_warmup = time.perf_counter() + spec.warmup
    while time.perf_counter() < end_warmup:
        local(), served()
    stop, flip = time.perf_counter() + spec.duration, 0
    while time.perf_counter() < stop:
        for side in (flip, 1 - flip):
            started = time.perf_counter()
            pair[side]()
            times[side].append(time.perf_counter() - started)
        flip = 1 - flip
    local_p50, served_p50 = (statistics.median(t) * 1000 for t in times)
    diffs = [s - c for c, s in zip(*times, strict=True)]
    return {"protocol": spec.protocol, "baseline": spec.baseline, "pairs": len(diffs),
            "in_process_p50_ms": round(local_p50, 3),
            "served_p50_ms": round(served_p50, 3), "added_ms": round(served_p50 - local_p50, 3),
            "paired_median_ms": round(statistics.median(diffs) * 1000, 3)}  # fmt: skip


def alternate(run_a: Callable[[], dict[str, Any]], run_b: Callable[[], dict[str, Any]], rounds: int,
              on_run: Callable[[], None] = lambda: None) -> dict[str, Any]:  # fmt: skip
    """Load runs against A and B in A B B A A B ... order; qps ratio A/B per round and its median."""
    a_rows: list[dict[str, Any]] = []
    b_rows: list[dict[str, Any]] = []
    for i in range(rounds):
        order = ((run_a, a_rows), (run_b, b_rows))
        for run, rows in order if i % 2 == 0 else order[::-1]:
            rows.append(run())
            on_run()
    ratios = [a["qps"] / b["qps"] if b["qps"] else float("inf") for a, b in zip(a_rows, b_rows, strict=True)]
    return {"ratio": round(statistics.median(ratios), 3), "round_ratios": [round(r, 3) for r in ratios],
            "a_runs": a_rows, "b_runs": b_rows}  # fmt: skip


if __name__ == "__main__":
    print(json.dumps(added_latency(LatencySpec(**json.loads(sys.argv[1])))))
