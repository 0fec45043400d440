"""`segserving VERB ...`: serve, convert, segment, id-photo, bulk, bench, and --version. Each verb is the module a
developer would run with `python -m` (server.start, convert, client_sdk, bulk, benchmarks), imported only when used,
so the command works in an SDK-only install for the client verbs and says what to install for the others."""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
from dataclasses import dataclass

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
  segserving presets --server 127.0.0.1:9393       ID-photo sizes (each document's rules), backgrounds, sheets
  segserving bulk photos/ masks/ -r --address ray://head:10001
  segserving bench run --image_size 640x480 --duration 8

`segserving VERB --help` shows each verb's options and examples."""


@dataclass(frozen=True)
class Verb:
    """A verb: the module whose `main(argv, prog=...)` runs it, and the extra that module needs."""

    module: str
    extra: str | None = None  # None: in the SDK, or the module says itself what is missing
    client: bool = False  # client_sdk.cli, which takes the verb as its own first argument

    def __call__(self, name: str, argv: list[str]) -> int:
        try:
            main = importlib.import_module(self.module).main
        except ImportError as exc:
            print(f"error: segserving {name} needs the [{self.extra}] extra: pip install -e '.[{self.extra}]' "
                  f"({exc})", file=sys.stderr)  # fmt: skip
            return 1
        if self.client:  # its sub-parser's prog then reads "segserving VERB"
            return int(main([name, *argv], prog="segserving") or 0)
        return int(main(argv, prog=f"segserving {name}") or 0)


VERBS: dict[str, Verb] = {
    "serve": Verb("server.start"),  # names the [server] extra itself when it is missing
    "convert": Verb("convert.cli", "convert"),
    "segment": Verb("client_sdk.cli", client=True),
    "id-photo": Verb("client_sdk.cli", client=True),
    "presets": Verb("client_sdk.cli", client=True),
    "bulk": Verb("bulk.job"),  # names the [ray] extra itself when it is missing
    "bench": Verb("benchmarks.__main__", "bench"),
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
    return VERBS[argv[0]](argv[0], argv[1:])
