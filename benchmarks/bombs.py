"""`python -m benchmarks bombs`: what hostile bodies cost the server: answer, time to answer, and the peak extra
memory of its whole process tree (front + workers), sampled every 20 ms against the idle tree just before.

Cases: a gzip body that inflates to 2.7 GB (refused from its gzip trailer; with a forged trailer, once the inflated
bytes pass --max_body_size), images whose
headers claim a huge canvas (refused from the header, before decoding: PNG, JPEG, and a real 20000x20000 PNG),
a body declaring 50 GiB (refused before it is read), and a 64 MiB request header (refused at
--max_header_bytes).
Writes results.json and results.md.
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import psutil

from benchmarks.procs import free_port, python, serve
from benchmarks.run import machine

SEGMENT = "/v1/models/portrait/segment"


def gzip_bomb(inflated: int) -> bytes:
    """A gzip body of `inflated` zero bytes, compressed in chunks (it never exists inflated here)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk, parts = bytes(2**24), []
    for _ in range(inflated // len(chunk)):
        parts.append(packer.compress(chunk))
    parts.append(packer.flush())
    return b"".join(parts)


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with almost no pixel data behind it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG with its frame header (SOF0) rewritten to claim width x height."""
    data = bytearray(cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))[1].tobytes())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def big_png(side: int) -> bytes:
    """A real, valid PNG of side x side black pixels (small once compressed)."""
    return cv2.imencode(".png", np.zeros((side, side, 3), np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 9])[1].tobytes()


def tree_rss(pid: int) -> float:
    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20


def measure(pid: int, send: Callable[[], tuple[int, str]]) -> dict[str, Any]:
    """Run `send` while sampling the server tree's RSS; peak extra MiB over the idle tree, seconds, status."""
    import threading

    baseline, peak, stop = tree_rss(pid), [0.0], threading.Event()

    def sampler() -> None:
        while not stop.wait(0.02):
            peak[0] = max(peak[0], tree_rss(pid))

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    started = time.perf_counter()
    status, message = send()
    seconds = time.perf_counter() - started
    time.sleep(0.1)
    stop.set()
    thread.join()
    return {"status": status, "seconds": round(seconds, 3), "peak_extra_mib": round(max(peak[0] - baseline, 0.0), 1),
            "idle_tree_mib": round(baseline, 1), "message": message[:160]}  # fmt: skip


def post(url: str, body: bytes, **headers: str) -> tuple[int, str]:
    response = httpx.post(url, content=body, headers=headers, timeout=300)
    return response.status_code, response.text


def raw(port: int, data: bytes) -> tuple[int, str]:
    """Send `data` on a plain socket as far as the server lets us, then read its answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        try:
            for start in range(0, len(data), 2**20):
                sock.sendall(data[start : start + 2**20])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before we finished: the point of the limit
        answer = b""
        while b"\r\n\r\n" not in answer:
            try:
                received = sock.recv(65536)
            except ConnectionResetError:
                break
            if not received:
                break
            answer += received
    head, _, body = answer.partition(b"\r\n\r\n")
    return (int(head.split()[1]) if head else 0), body.decode("latin-1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks bombs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--out", default="benchmarks/results/bombs")
    parser.add_argument("--gzip_mib", type=int, default=2700, help="what the gzip bomb inflates to (MiB)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}{SEGMENT}"
    inflated = args.gzip_mib * 2**20
    bomb = gzip_bomb(inflated)
    forged = bomb[:-4] + (1000).to_bytes(4, "little")  # its trailer claims 1000 bytes
    gzip_headers = {"content-type": "image/png", "content-encoding": "gzip"}
    png_10gp, jpeg_4gp, png_400mp = png_claiming(100_000, 100_000), jpeg_claiming(65_500, 65_500), big_png(20_000)
    declared = f"POST {SEGMENT} HTTP/1.1\r\nHost: x\r\nContent-Length: {50 * 2**30}\r\n\r\n".encode() + bytes(2**20)
    long_header = b"GET /health/live HTTP/1.1\r\nX-Big: " + b"a" * 2**26
    cases: list[tuple[str, Callable[[], tuple[int, str]]]] = [
        (f"gzip body: {len(bomb) / 2**20:.1f} MiB inflating to {inflated / 2**30:.1f} GiB",
         lambda: post(url, bomb, **gzip_headers)),
        ("the same, its gzip trailer forged to claim 1000 bytes", lambda: post(url, forged, **gzip_headers)),
        ("PNG header claiming 100000 x 100000 (10 GP)", lambda: post(url, png_10gp)),
        ("JPEG header claiming 65500 x 65500 (4.3 GP)", lambda: post(url, jpeg_4gp)),
        (f"valid PNG, 20000 x 20000 black pixels (400 MP, {len(png_400mp) / 2**20:.1f} MiB)",
         lambda: post(url, png_400mp)),
        ("Content-Length: 50 GiB, 1 MiB sent", lambda: raw(port, declared)),
        ("64 MiB header line", lambda: raw(port, long_header)),
    ]  # fmt: skip
    command = python("-m", "server.start", "--model", "portrait", "--port", str(port), "--host", "127.0.0.1",
                     "--thread", "1", "--workdir", f"/tmp/segserving-bombs-{port}")  # fmt: skip
    rows = []
    with serve(command, f"http://127.0.0.1:{port}/health/ready", out / "server.log") as server:
        for _ in range(3):  # warm: the idle tree is measured after the first requests
            assert post(url, big_png(64))[0] == 200
        for name, send in cases:
            rows.append({"case": name, **measure(server.pid, send)})
            assert httpx.get(f"http://127.0.0.1:{port}/health/ready").status_code == 200, name
    limits = {"max_body_size_mib": 512, "max_image_pixels": 40_000_000, "max_header_bytes": 65536}
    results = {"machine": machine(), "defaults": limits, "cases": rows}
    (out / "results.json").write_text(json.dumps(results, indent=1))
    lines = ["| case | answer | seconds | peak extra memory (MiB) |", "|---|---:|---:|---:|"]
    lines += [f"| {r['case']} | {r['status']} | {r['seconds']} | {r['peak_extra_mib']} |" for r in rows]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0
