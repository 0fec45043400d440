"""`python -m client_sdk segment IMG_OR_DIR... --server HOST:PORT --out DIR [--overlay] [--cutout]`."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from PIL import Image

from client_sdk.client import SegClient
from client_sdk.errors import SegServingError
from segcore.defaults import DEFAULT_ENDPOINT, DEFAULT_MODEL

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m client_sdk", description="SegServing client")
    commands = parser.add_subparsers(dest="command", required=True)
    seg = commands.add_parser("segment", help="segment images or folders of images")
    seg.add_argument("inputs", nargs="+", help="image files and/or folders (jpg, png, webp, bmp)")
    seg.add_argument("--server", default=DEFAULT_ENDPOINT, help="HOST:PORT or URL (default: %(default)s)")
    seg.add_argument("--model", default=DEFAULT_MODEL, help="served model (default: %(default)s)")
    seg.add_argument("--out", required=True, help="output folder: NAME_mask.png (+ _overlay.jpg, _cutout.png)")
    seg.add_argument("--overlay", action="store_true", help="also write a colour overlay")
    seg.add_argument("--cutout", action="store_true", help="also write an RGBA cut-out with soft edges")
    seg.add_argument("--protocol", choices=("http", "grpc"), default="http")
    seg.add_argument("--api_key", default=None, help="the server's API key (default: env SEGSERVING_API_KEY)")
    seg.add_argument("--concurrency", type=int, default=4, help="requests in flight (default: %(default)s)")
    seg.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default: %(default)s)")
    seg.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return parser


def collect(inputs: list[str]) -> list[Path]:
    """Files as given; folders expanded to their images (sorted, not recursive)."""
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files.extend(sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()))
        else:
            files.append(item)
    return files


def run_segment(args: argparse.Namespace) -> int:
    files = collect(args.inputs)
    if not files:
        print("error: no images found", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with SegClient(args.server, model=args.model, protocol=args.protocol, timeout=args.timeout,
                   api_key=args.api_key) as client:  # fmt: skip
        results = client.segment_batch(files, concurrency=args.concurrency, progress=args.progress,
                                       probability=args.cutout)  # fmt: skip
    elapsed = time.perf_counter() - started
    failures = 0
    for path, result in zip(files, results, strict=True):
        if isinstance(result, SegServingError):
            failures += 1
            print(f"failed: {path}: {result.message}", file=sys.stderr)
            continue
        result.save(out / f"{path.stem}_mask.png")
        if args.overlay:
            Image.fromarray(result.overlay(path, rgb=True)).save(out / f"{path.stem}_overlay.jpg", quality=90)
        if args.cutout:
            Image.fromarray(result.cutout(path, rgb=True), mode="RGBA").save(out / f"{path.stem}_cutout.png")
    done = len(files) - failures
    print(f"{done}/{len(files)} images segmented in {elapsed:.2f} s ({len(files) / elapsed:.1f} images/s), "
          f"{failures} failed; results in {out}")  # fmt: skip
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_segment(args)
