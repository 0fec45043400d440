"""`python -m convert`: Paddle Serving's converter flags plus SegServing's own."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from convert.api import ConvertOptions, convert_model
from convert.loader import ConvertError


def _names(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"empty name in {value!r}")
    return names


def _shape(value: str) -> list[int | None]:
    try:
        dims = [int(d) for d in value.replace("x", ",").split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--input_shape takes N,C,H,W integers (-1 = dynamic), got {value!r}"
        ) from None
    if len(dims) != 4 or any(d == 0 or d < -1 for d in dims):
        raise argparse.ArgumentTypeError(f"--input_shape takes 4 dims N,C,H,W (-1 = dynamic), got {value!r}")
    return [None if d == -1 else d for d in dims]


EXAMPLES = """examples:
  %(prog)s --dirname output/export --serving_server seg/serving_server --serving_client seg/serving_client
  %(prog)s --dirname output/export --model_filename model.pdmodel --params_filename model.pdiparams \\
      --fetch_alias_names output --onnx

Then serve it: segserving serve --model seg/serving_server (or python -m server.start)."""


def build_parser(prog: str = "python -m convert") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Convert an exported Paddle inference model (PaddleSeg export dir with model.json or "
        "model.pdmodel + model.pdiparams + deploy.yaml, a fluid __model__ dir, or a Paddle Serving "
        "serving_server dir) into serving_server/ + serving_client/ in Paddle Serving's layout, with "
        "SegServing's segserving.yaml and an optional verified ONNX copy.",
    )
    p.add_argument("--dirname", required=True, help="directory of the exported inference model")
    p.add_argument(
        "--model_filename",
        default=None,
        help="program file inside --dirname (default: deploy.yaml's, else model.json, model.pdmodel, "
        "inference.json, inference.pdmodel or __model__); kept as the name in serving_server",
    )
    p.add_argument(
        "--params_filename",
        default=None,
        help="combined params file (default: deploy.yaml's, else model.pdiparams, ...; none = one file "
        "per parameter, re-saved combined as params.pdiparams)",
    )
    p.add_argument(
        "--serving_server", default="serving_server", help="output dir for the server model (default: %(default)s)"
    )
    p.add_argument(
        "--serving_client", default="serving_client", help="output dir for the client conf (default: %(default)s)"
    )
    p.add_argument(
        "--feed_alias_names", type=_names, default=None, help="comma-separated aliases, one per feed var, in feed order"
    )
    p.add_argument(
        "--fetch_alias_names",
        type=_names,
        default=None,
        help="comma-separated aliases, one per fetch var, in fetch-name sorted order (Paddle Serving's rule)",
    )
    p.add_argument(
        "--name", default=None, help="model name in segserving.yaml (default: the entry dir's or --dirname's name)"
    )
    p.add_argument(
        "--onnx",
        dest="onnx",
        action="store_true",
        default=True,
        help="also write model.onnx and verify it against Paddle (default)",
    )
    p.add_argument("--no-onnx", dest="onnx", action="store_false", help="skip the ONNX copy")
    p.add_argument(
        "--input_shape",
        type=_shape,
        default=None,
        help="N,C,H,W of the model input (-1 = dynamic), e.g. -1,3,512,512: the sample shape used to "
        "verify the model and the shape recorded in segserving.yaml (default: deploy.yaml's, else the "
        "program's)",
    )
    p.add_argument(
        "--onnx_tolerance",
        type=float,
        default=1e-4,
        help="max abs difference allowed between ONNX and Paddle float outputs (default: %(default)s)",
    )
    return p


def main(argv: list[str] | None = None, prog: str = "python -m convert") -> int:
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    opts = ConvertOptions(
        dirname=Path(args.dirname),
        model_filename=args.model_filename,
        params_filename=args.params_filename,
        serving_server=Path(args.serving_server),
        serving_client=Path(args.serving_client),
        feed_alias_names=args.feed_alias_names,
        fetch_alias_names=args.fetch_alias_names,
        name=args.name,
        onnx=args.onnx,
        input_shape=args.input_shape,
        onnx_tolerance=args.onnx_tolerance,
    )
    try:
        result = convert_model(opts)
    except ConvertError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    check = result.config.onnx.check if result.config.onnx else None
    onnx_note = f", ONNX verified on {check.sample_shape}" if check else ", no ONNX copy (serves on Paddle Inference)"
    feeds = ", ".join(f"{v.alias}({v.name})" for v in result.conf.feeds)
    fetches = ", ".join(f"{v.alias}({v.name})" for v in result.conf.fetches)
    print(f"converted {result.config.name!r}: feeds [{feeds}] fetches [{fetches}]{onnx_note}")
    print(f"  server: {result.server_dir}\n  client: {result.client_dir}")
    return 0
