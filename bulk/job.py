"""`segserving bulk SRC DST`: segment a folder (or a list of image paths) on Ray Data, locally or on a cluster,
with the server's pipeline in actors that load the model once; resumable, a progress bar, a summary."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from client_sdk.batch import OUTPUTS, plan, remaining
from client_sdk.progress import Progress
from segcore.defaults import DEFAULT_MODEL

EXAMPLES = """examples:
  %(prog)s photos/ masks/ -r                          local Ray, one actor per CPU
  %(prog)s photos/ masks/ -r --skip-existing          resume
  %(prog)s list.txt masks/ --address ray://head:10001 --actors 32    a cluster; list.txt: one path per line

Results are named and rendered as by `segserving segment` (photos/a.jpg -> masks/a.jpg.png)."""


@dataclass
class BulkOptions:
    """What to run and where."""

    model: str = DEFAULT_MODEL
    repository: str | None = None
    engine: str = "auto"
    output: str = "mask"
    actors: int | None = None  # default: one per CPU Ray sees
    batch_size: int = 8
    recursive: bool = False
    skip_existing: bool = False
    address: str | None = None  # None: a local Ray
    progress: bool = True


@dataclass
class BulkReport:
    """Counts, the failures (path, reason) and the wall time."""

    total: int = 0
    written: int = 0
    skipped: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0


def _inputs(source: Path) -> list[Path]:
    """A folder as it is; a text file as one image path per line (blank lines and # comments skipped)."""
    if source.is_file() and source.suffix.lower() in (".txt", ".lst"):
        lines = (line.strip() for line in source.read_text().splitlines())
        return [Path(line) for line in lines if line and not line.startswith("#")]
    return [source]


def segment_folder(source: str | Path, target: str | Path, options: BulkOptions | None = None) -> BulkReport:
    """Segment every image under `source` (a folder, or a .txt list of paths) into `target`, on Ray Data."""
    import ray

    from bulk.segmenter import Segmenter

    options = options or BulkOptions()
    items = plan(_inputs(Path(source)), Path(target), ".png", options.recursive)
    report = BulkReport(total=len(items))
    progress = Progress(len(items), "bulk", enabled=options.progress)
    todo = remaining(items, options.skip_existing, progress)
    started = time.monotonic()
    if todo:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local cluster of this process alone (not --address)
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")  # the core's notices; failures still raise here
        ray.init(address=options.address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)  # fmt: skip
        for name in ("ray", "ray.data"):  # Ray's notices would drown the progress lines
            logging.getLogger(name).setLevel(logging.ERROR)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # ours counts images, not blocks
        context.print_on_execution_start = False
        actors = options.actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
        rows = [{"source": str(i.source), "target": str(i.target)} for i in todo]
        # enough blocks for every actor to start at once, each about a batch
        blocks = min(len(rows), max(2 * actors, math.ceil(len(rows) / options.batch_size)))
        done = ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
            Segmenter, fn_constructor_args=(options.model, options.repository, options.engine, options.output),
            batch_size=options.batch_size, compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=1,
            batch_format="numpy")  # fmt: skip
        for batch in done.iter_batches(batch_size=None, batch_format="numpy"):
            for path, error in zip(batch["source"], batch["error"], strict=True):
                if error:
                    report.failures.append((str(path), str(error)))
                    progress.line(f"failed: {path}: {error}")
                progress.update("failed" if error else "done")
    progress.close()
    report.written, report.skipped = progress.done, progress.skipped
    report.seconds = time.monotonic() - started
    return report


def build_parser(prog: str = "python -m bulk") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Segment folders of images on Ray Data with the server's "
                                "pipeline (needs the [ray] extra).", epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("source", type=Path, help="a folder of images, or a .txt file listing image paths")
    p.add_argument("target", type=Path, help="output folder")
    p.add_argument("-r", "--recursive", action="store_true", help="go into subfolders")
    p.add_argument("--output", choices=OUTPUTS, default="mask", help="what to write (default: %(default)s)")
    p.add_argument("--model", default=DEFAULT_MODEL, help="model name, or a repository entry dir")
    p.add_argument("--repository", default=None, help="model repository root (default: the bundled one)")
    p.add_argument("--engine", default="auto", help="auto | onnxruntime | paddle")
    p.add_argument("--actors", type=int, default=None, help="model copies (default: one per CPU)")
    p.add_argument("--batch-size", type=int, default=8, help="images per engine batch (default: %(default)s)")
    p.add_argument("--address", default=None, help="a Ray cluster (ray://host:10001 or auto); default: local")
    p.add_argument("--skip-existing", action="store_true", help="leave images whose result exists (resume)")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    return p


def main(argv: list[str] | None = None, prog: str = "python -m bulk") -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        import ray  # noqa: F401
    except ImportError:
        print("error: segserving bulk needs the [ray] extra: pip install -e '.[ray]'", file=sys.stderr)
        return 1
    if args.batch_size < 1 or (args.actors is not None and args.actors < 1):
        print("error: --batch-size and --actors must be positive", file=sys.stderr)
        return 2
    options = BulkOptions(args.model, args.repository, args.engine, args.output, args.actors, args.batch_size,
                          args.recursive, args.skip_existing, args.address, args.progress)  # fmt: skip
    try:
        report = segment_folder(args.source, args.target, options)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rate = report.written / report.seconds if report.seconds > 0 else 0.0
    print(f"{report.total} images: {report.written} written, {report.skipped} skipped (already there), "
          f"{len(report.failures)} failed, in {report.seconds:.1f} s ({rate:.1f} images/s); results in "
          f"{args.target}")  # fmt: skip
    return 1 if report.failures else 0
