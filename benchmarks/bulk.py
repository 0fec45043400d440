"""`python -m benchmarks bulk`: images/s of `segserving bulk` (Ray Data, the server's pipeline in actors) on a
folder of photos, next to the server's own throughput on the same files through `segserving segment` (a local
server with as many workers as actors; the client writes the same masks), alternated for a few rounds on this
machine. Both figures include reading the files and writing the masks.

    python -m benchmarks bulk [--images 1000] [--size 640x480] [--actors 2] [--rounds 2]
                              [--out benchmarks/results/bulk]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2

from benchmarks.payloads import photo
from benchmarks.procs import free_port, machine, python, serve
from benchmarks.report import md_table


def _folder(root: Path, count: int, size: tuple[int, int]) -> Path:
    folder = root / "photos"
    folder.mkdir()
    jpeg = cv2.imencode(".jpg", photo(size), [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    for i in range(count):
        (folder / f"{i:05d}.jpg").write_bytes(jpeg)
    return folder


def _timed(command: list[str], out: Path) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, check=False, timeout=3600)
    seconds = time.perf_counter() - started
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-500:]
    written = int(m.group(1)) if (m := re.search(r"(\d+) written", summary)) else 0
    return {"seconds": round(seconds, 2), "written": written, "images_per_s": round(written / seconds, 1),
            "exit_code": proc.returncode, "summary": summary}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks bulk", description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--actors", type=int, default=2, help="Ray actors, and the server's workers")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/bulk")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict[str, Any]]] = {"bulk": [], "server": []}
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        photos = _folder(root, args.images, (width, height))
        port = free_port()
        bulk = python("-m", "segserving", "bulk", str(photos), str(root / "bulk"), "--actors", str(args.actors),
                      "--no-progress")  # fmt: skip
        segment = python("-m", "segserving", "segment", str(photos), "-o", str(root / "segment"), "--server",
                         f"127.0.0.1:{port}", "--workers", str(4 * args.actors), "--no-progress")  # fmt: skip
        server = python("-m", "server.start", "--port", str(port), "--host", "127.0.0.1", "--thread",
                        str(args.actors), "--workdir", str(root / "workdir"))  # fmt: skip
        with serve(server, f"http://127.0.0.1:{port}/health/ready", out / "server.log"):
            for i in range(args.rounds):
                order = [("bulk", bulk, root / "bulk"), ("server", segment, root / "segment")]
                for name, command, target in order if i % 2 == 0 else order[::-1]:
                    rows[name].append(_timed(command, target))
    medians = {k: statistics.median(r["images_per_s"] for r in v) for k, v in rows.items()}
    results = {"started": started, "machine": machine(), "images": args.images,
               "size": [width, height], "actors": args.actors, "runs": rows,
               "median_images_per_s": medians}  # fmt: skip
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    columns = ["system", "images/s (median)", "runs (s)"]
    table = md_table([{"system": f"segserving bulk, {args.actors} Ray actors", "images/s (median)": medians["bulk"],
                       "runs (s)": ", ".join(str(r["seconds"]) for r in rows["bulk"])},
                      {"system": f"server, {args.actors} workers, via segserving segment",
                       "images/s (median)": medians["server"],
                       "runs (s)": ", ".join(str(r["seconds"]) for r in rows["server"])}], columns)  # fmt: skip
    (out / "results.md").write_text(f"{args.images} photos of {width}x{height}, rounds alternated\n\n{table}\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
