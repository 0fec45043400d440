"""`segserving VERB ...`: serve, convert, segment, id-photo, bench, and --version. Each verb is the module a
developer would run with `python -m` (server.start, convert, client_sdk, benchmarks), imported only when used,
so the command works in an SDK-only install for the client verbs and says what to install for the others."""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from collections.abc import Callable

DESCRIPTION = """SegServing: serve PaddleSeg models with Paddle Serving's protocol, and use them.

verbs:
  serve      start the server (= python -m server.start; Paddle Serving's flags, docs/serve-flags.md)
  convert    PaddleSeg export -> serving_server/ + serving_client/ (= python -m convert)
  segment    segment images and folders on a server, write masks, overlays or cut-outs
  id-photo   ID photos (background, standard sizes, print sheets) from portraits on a server
  bulk       segment folders on Ray Data with the server's pipeline (local or a cluster; the [ray] extra)
  bench      benchmarks (= python -m benchmarks: run, profile, scaling, gpu, ...)

examples:
  segserving serve --model serving_models/portrait --port 9393 --thread 2
  segserving serve stop --port 9393
  segserving convert --dirname output/export --serving_server seg/serving_server --serving_client seg/serving_client
  segserving segment photos/ -r -o masks/ --server 127.0.0.1:9393
  segserving id-photo me.jpg -o id.jpg --background blue --size 1inch
  segserving bulk photos/ masks/ -r --address ray://head:10001
  segserving bench run --image_size 640x480 --duration 8

`segserving VERB --help` shows each verb's options and examples."""


def _serve(argv: list[str]) -> int:
    from server.start import main

    return main(argv, prog="segserving serve")


def _convert(argv: list[str]) -> int:
    try:
        from convert.cli import main
    except ImportError as exc:
        print(f"error: segserving convert needs the [convert] extra: pip install -e '.[convert]' ({exc})",
              file=sys.stderr)  # fmt: skip
        return 1
    return main(argv, prog="segserving convert")


def _client(verb: str) -> Callable[[list[str]], int]:
    def run(argv: list[str]) -> int:
        from client_sdk.cli import main

        return main([verb, *argv], prog="segserving")  # its sub-parser's prog reads "segserving VERB"

    return run


def _bench(argv: list[str]) -> int:
    try:
        from benchmarks.__main__ import main
    except ImportError as exc:
        print(f"error: segserving bench needs a checkout with the benchmark tools: pip install -e '.[bench]' ({exc})",
              file=sys.stderr)  # fmt: skip
        return 1
    return main(argv, prog="segserving bench")


def _bulk(argv: list[str]) -> int:
    from bulk.job import main

    return main(argv, prog="segserving bulk")


VERBS: dict[str, Callable[[list[str]], int]] = {
    "serve": _serve,
    "convert": _convert,
    "segment": _client("segment"),
    "id-photo": _client("id-photo"),
    "bulk": _bulk,
    "bench": _bench,
}


def version() -> str:
    try:
        return importlib.metadata.version("segserving")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that is not installed
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="segserving", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--version", action="version", version=f"segserving {version()}")
    parser.add_argument("verb", choices=VERBS, help=argparse.SUPPRESS)
    if not argv:
        parser.print_help(sys.stderr)
        return 2
    if argv[0] not in VERBS:
        parser.parse_args(argv)  # --help, --version, or a usage error naming the verbs
        return 2
    return int(VERBS[argv[0]](argv[1:]) or 0)
