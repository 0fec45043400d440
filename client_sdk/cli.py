"""The client's command line: `segment` and `id-photo` over files and folders (`segserving segment|id-photo`, or
`python -m client_sdk segment|id-photo`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from client_sdk.batch import OUTPUTS, Item, plan, reason, remaining, render, write_atomic
from client_sdk.client import SegClient
from client_sdk.errors import AuthError, ModelNotFound, Unavailable
from client_sdk.progress import LINE_EVERY_S, Progress
from segcore.defaults import DEFAULT_ENDPOINT, DEFAULT_MODEL

FATAL = (Unavailable, AuthError, ModelNotFound)  # about the server or the setup, not the file: stop the run
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")

SEGMENT_EXAMPLES = """examples:
  %(prog)s photos/ -o masks/                     masks/a.jpg.png for photos/a.jpg
  %(prog)s photos/ -r -o out/ --output cutout    subfolders too, RGBA cut-outs, out/ mirrors photos/
  %(prog)s photos/ -o masks/ --skip-existing     resume a run that stopped
  %(prog)s a.jpg b.png --server 10.0.0.5:9393 --workers 8 -o out/

Each result is named after its input with .png added (a.jpg -> a.jpg.png, a.png -> a.png.png), so inputs that
differ only in extension never overwrite each other; the input's subfolders are kept. mask: 0/255 for two-class
models, the class ids with a colour palette otherwise. Files are written whole or not at all. Exit code: 0, or 1
if any image failed (each gets one line on stderr), 2 for bad arguments."""

ID_PHOTO_EXAMPLES = """examples:
  %(prog)s me.jpg -o id.jpg --background blue --size 1inch
  %(prog)s me.jpg -o id.jpg --size 2inch --sheet 4R          also id.sheet.jpg, a 4R print sheet
  %(prog)s portraits/ -r -o ids/ --background white          ids/a.jpg.jpg for portraits/a.jpg

One photo with -o NAME.jpg|.png writes that file; otherwise -o is a folder and each result is named after its
input with the format's extension added. Exit code: 0, or 1 if any photo failed (e.g. no face found)."""


def _connection(parser: argparse.ArgumentParser, grpc: bool) -> None:
    parser.add_argument("--server", default=DEFAULT_ENDPOINT, help="HOST:PORT or URL (default: %(default)s)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="served model (default: %(default)s)")
    if grpc:
        parser.add_argument("--protocol", choices=("http", "grpc"), default="http")
    parser.add_argument("--api_key", default=None, help="the server's API key (default: env SEGSERVING_API_KEY)")
    parser.add_argument("--workers", "--concurrency", type=int, default=4,
                        help="requests in flight (default: %(default)s)")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per image (default: %(default)s)")
    parser.add_argument("-r", "--recursive", action="store_true", help="go into subfolders")
    parser.add_argument("--skip-existing", action="store_true", help="leave images whose result exists (resume)")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no progress bar on a terminal, no progress lines otherwise")  # fmt: skip
    parser.add_argument("--progress-every", type=float, default=LINE_EVERY_S, metavar="SECONDS",
                        help="stderr not a terminal: a progress line this often (default: %(default)s)")  # fmt: skip


def add_segment_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", type=Path, help="image files and/or folders")
    parser.add_argument("-o", "--out", required=True, type=Path, help="output folder")
    parser.add_argument("--output", choices=OUTPUTS, default="mask", help="what to write (default: %(default)s)")
    _connection(parser, grpc=True)


def add_id_photo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", type=Path, help="portrait photos and/or folders of them")
    parser.add_argument("-o", "--out", required=True, type=Path, help="the ID photo (one input), or a folder")
    parser.add_argument("--background", default=None,
                        help="white|blue|red|light-grey|cream|#RRGGBB|r,g,b|transparent (default: the size's own, "
                        "else white)")  # fmt: skip
    parser.add_argument("--size", default="1inch",
                        help="a preset (`presets` lists them: 1inch, us-passport, ...) or custom")  # fmt: skip
    parser.add_argument("--width", type=int, default=None, help="pixels, with --size custom")
    parser.add_argument("--height", type=int, default=None, help="pixels, with --size custom")
    parser.add_argument("--width-mm", type=float, default=None, help="millimetres, with --size custom")
    parser.add_argument("--height-mm", type=float, default=None, help="millimetres, with --size custom")
    parser.add_argument("--dpi", type=int, default=None, help="with --width-mm/--height-mm (default 300)")
    parser.add_argument("--crop", choices=("face", "none"), default="face", help="place the head (default) or not")
    parser.add_argument("--face", choices=("single", "largest"), default="single",
                        help="several faces in a photo: refuse it (default) or use the largest")  # fmt: skip
    parser.add_argument("--format", choices=("jpeg", "png"), default=None, help="default: JPEG (PNG if transparent)")
    parser.add_argument("--max-kb", type=int, default=None, help="largest file size in KB")
    parser.add_argument("--min-kb", type=int, default=None, help="smallest file size in KB (upload portals)")
    parser.add_argument("--sheet", choices=("4R", "5inch", "A4"), default=None, help="also write a print sheet")
    parser.add_argument("--no-refine", dest="refine", action="store_false", help="skip the edge refinement")
    parser.add_argument("--white-balance", action="store_true", help="correct the person's colour cast")
    parser.add_argument("--brightness", action="store_true", help="correct the person's exposure")
    _connection(parser, grpc=False)


def build_parser(prog: str = "python -m client_sdk") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="SegServing client")
    verbs = parser.add_subparsers(dest="command", required=True)
    raw = argparse.RawDescriptionHelpFormatter
    segment = verbs.add_parser(
        "segment", help="segment images or folders", epilog=SEGMENT_EXAMPLES, formatter_class=raw
    )
    add_segment_arguments(segment)
    photo = verbs.add_parser("id-photo", help="ID photos from portraits", epilog=ID_PHOTO_EXAMPLES, formatter_class=raw)
    add_id_photo_arguments(photo)
    presets = verbs.add_parser("presets", help="the server's ID-photo sizes, backgrounds and print sheets")
    presets.add_argument("--server", default=DEFAULT_ENDPOINT, help="HOST:PORT or URL (default: %(default)s)")
    presets.add_argument("--api_key", default=None, help="the server's API key (default: env SEGSERVING_API_KEY)")
    presets.add_argument("--json", action="store_true", help="print the server's JSON as it is")
    return parser


def _bounded(pool: ThreadPoolExecutor, work: Callable[[Item], str | None], items: list[Item],
             window: int) -> Iterator[tuple[Item, str | None]]:  # fmt: skip
    """(item, failure or None) as they finish, with at most `window` submitted at a time (memory stays flat on
    folders of any size)."""
    pending: dict[Future[str | None], Item] = {}
    queue = iter(items)
    for item in queue:
        pending[pool.submit(work, item)] = item
        if len(pending) >= window:
            break
    while pending:
        finished, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in finished:
            yield pending.pop(future), future.result()
            following = next(queue, None)
            if following is not None:
                pending[pool.submit(work, following)] = following


def _shown(path: Path) -> str:
    """The path as the user would type it: relative to the current folder when below it."""
    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative


def _run(items: list[Item], progress: Progress, workers: int, job: Callable[[Item], None], out: Path) -> int:
    """Run `job` on every item, `workers` at a time; one line per failure; a summary on stdout; the exit code."""
    stop, fatal = threading.Event(), []

    def work(item: Item) -> str | None:
        if stop.is_set():
            return "not attempted: the run stopped"
        try:
            job(item)
        except FATAL as exc:
            if not stop.is_set():
                stop.set()
                fatal.append(exc.message)
            return "not attempted: the run stopped"
        except Exception as exc:  # anything about this one file: report it, go on with the others
            return reason(exc)
        return None

    with ThreadPoolExecutor(max(1, workers)) as pool:
        for item, failure in _bounded(pool, work, items, 2 * max(1, workers)):
            if failure is not None and not failure.startswith("not attempted"):
                progress.line(f"failed: {_shown(item.source)}: {failure}")
            progress.update("failed" if failure else "done")
    progress.close()
    if fatal:
        print(f"error: {fatal[0]}", file=sys.stderr)
    rate = progress.done / progress.elapsed if progress.elapsed > 0 else 0.0
    print(f"{progress.total} images: {progress.done} written, {progress.skipped} skipped (already there), "
          f"{progress.failed} failed, in {progress.elapsed:.1f} s ({rate:.1f} images/s); results in {out}")  # fmt: skip
    return 1 if progress.failed or fatal else 0


def _prepare(args: argparse.Namespace, items: list[Item], desc: str) -> tuple[list[Item], Progress]:
    progress = Progress(len(items), desc, enabled=args.progress, every_s=args.progress_every)
    return remaining(items, args.skip_existing, progress), progress


def _plan(args: argparse.Namespace, suffix: str) -> list[Item] | None:
    try:
        items = plan(args.inputs, args.out, suffix, args.recursive)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    if not items:
        print(f"error: no images in {', '.join(map(str, args.inputs))} (jpg, jpeg, png, webp, bmp"
              f"{'' if args.recursive else '; -r for subfolders'})", file=sys.stderr)  # fmt: skip
        return None
    return items


def run_segment(args: argparse.Namespace) -> int:
    items = _plan(args, ".png")
    if items is None:
        return 2
    todo, progress = _prepare(args, items, "segment")
    probability = args.output in ("probability", "cutout")
    with SegClient(args.server, model=args.model, protocol=args.protocol, timeout=args.timeout,
                   api_key=args.api_key) as client:  # fmt: skip

        def job(item: Item) -> None:
            result = client.segment(item.source, probability=probability)
            write_atomic(item.target, render(result, args.output, item.source))

        return _run(todo, progress, args.workers, job, args.out)


def run_id_photo(args: argparse.Namespace) -> int:
    transparent = args.format is None and args.background == "transparent"
    extension = ".png" if args.format == "png" or transparent else ".jpg"
    single = len(args.inputs) == 1 and args.inputs[0].is_file() and args.out.suffix.lower() in PHOTO_SUFFIXES
    items = [Item(args.inputs[0].resolve(), args.out)] if single else _plan(args, extension)
    if items is None:
        return 2
    todo, progress = _prepare(args, items, "id-photo")
    with SegClient(args.server, model=args.model, timeout=args.timeout, api_key=args.api_key) as client:

        def job(item: Item) -> None:
            photo = client.id_photo(item.source, background=args.background, size=args.size, width=args.width,
                                    height=args.height, crop=args.crop, face=args.face, format=args.format,
                                    max_kb=args.max_kb, min_kb=args.min_kb, sheet=args.sheet,
                                    refine=args.refine, white_balance=args.white_balance,
                                    brightness=args.brightness, width_mm=args.width_mm,
                                    height_mm=args.height_mm, dpi=args.dpi)  # fmt: skip
            if photo.sheet is not None:
                write_atomic(item.target.with_suffix(".sheet" + item.target.suffix), photo.sheet)
            write_atomic(item.target, photo.photo)

        return _run(todo, progress, args.workers, job, args.out)


def run_presets(args: argparse.Namespace) -> int:
    with SegClient(args.server, api_key=args.api_key) as client:
        catalogue = client.id_photo_presets()
    if args.json:
        print(json.dumps(catalogue, ensure_ascii=False, indent=2))
        return 0

    def mm(band: list[float] | None) -> str:
        return f"{band[0]:g}-{band[1]:g}" if band else "-"

    print(f"{'size':<18} {'mm':<11} {'px':<9} {'dpi':>4}  {'head mm':<9} {'eyes mm':<9} backgrounds")
    for size in catalogue["sizes"]:
        dims = f"{size['mm'][0]:g}x{size['mm'][1]:g}" if size["mm"] else "-"
        pixels = f"{size['px'][0]}x{size['px'][1]}" if size["px"] else "-"
        backgrounds = ",".join(size["backgrounds"] or ["any"])
        print(f"{size['name']:<18} {dims:<11} {pixels:<9} {size['dpi']:>4}  {mm(size['head_mm']):<9} "
              f"{mm(size['eyes_above_bottom_mm']):<9} {backgrounds}")  # fmt: skip
    print("backgrounds: " + ", ".join(b["name"] for b in catalogue["backgrounds"]))
    print("sheets: " + ", ".join(s["name"] for s in catalogue["sheets"]))
    return 0


def main(argv: list[str] | None = None, prog: str = "python -m client_sdk") -> int:
    args = build_parser(prog).parse_args(argv)
    runs = {"segment": run_segment, "id-photo": run_id_photo, "presets": run_presets}
    return runs[args.command](args)
