"""`python -m app (--server HOST:PORT | --standalone) [--host H] [--port P]`: the ID-photo web UI."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from app.backend import Backend, LocalBackend, RemoteBackend
from segcore.defaults import DEFAULT_MODEL


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description="AI ID photo web UI (Gradio)")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--server", metavar="HOST:PORT", help="use a running SegServing server through the SDK")
    mode.add_argument("--standalone", action="store_true", help="run the bundled portrait model in this process")
    parser.add_argument("--host", default="127.0.0.1", help="address the UI listens on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=7860, help="port the UI listens on (default: %(default)s)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="segmentation model (default: %(default)s)")
    parser.add_argument("--cpu_threads", type=int, default=1, help="--standalone: math threads (default: 1)")
    return parser


def make_backend(args: argparse.Namespace) -> Backend:
    if args.server:
        return RemoteBackend(args.server, model=args.model)
    return LocalBackend(args.model, threads=args.cpu_threads)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from app import ui  # gradio reads its environment on import

    backend = make_backend(args)
    with tempfile.TemporaryDirectory(prefix="id-photo-") as workdir:
        page = ui.build(backend, Path(workdir))
        try:
            page.queue(default_concurrency_limit=1).launch(
                server_name=args.host, server_port=args.port, share=False, ssr_mode=False, show_error=True,
                allowed_paths=[workdir], footer_links=[],
            )  # fmt: skip
        finally:
            backend.close()
    return 0
