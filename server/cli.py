"""Paddle Serving's launcher flags (plus SegServing's) -> validated ServerSettings -> a running server."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn, cast

from segcore.allocator import tune_malloc
from segcore.defaults import DEFAULT_MODEL, DEFAULT_PORT
from segcore.engines import ENGINE_NAMES, EngineOptions, resolve_engine_name
from segcore.engines.base import Precision
from segcore.engines.paddle_inference import PADDLE_MISSING
from segcore.images import ImageLimits
from segcore.repository import ModelRepository
from server import flagfile
from server.auth import ApiKeys
from server.cpus import available as available_cpus
from server.paddle_flags import add_legacy_flags, check_legacy_flags
from server.settings import BatchPolicy, ModelSettings, ServerSettings, TlsFiles

MiB = 2**20
CPU_BATCH_SIZE = 8
# On an H200 (benchmarks/results/gpu-h200), 4 workers served 624 img/s at batch 1 and 285 img/s with ~1.4 s p99
# stalls at --batch_size 8, even when the mean batch formed was 1.03: batch 1 until that is understood.
GPU_BATCH_SIZE = 1
_DASHED_GPU_LIST = re.compile(r"-\d+(,-?\d*)+")  # "-1,0": argparse would take it for an unknown option

log = logging.getLogger("server.cli")


class _Parser(argparse.ArgumentParser):
    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """Expand `@FILE` flag files, and keep a --gpu_ids list that starts with -1 ("-1,0") a value, so it reaches
        the check that explains it."""
        try:
            given = flagfile.expand(sys.argv[1:] if args is None else args)
        except flagfile.FlagFileError as exc:
            self.error(str(exc))
        marked, in_gpu_ids = [], False
        for arg in given:
            if in_gpu_ids and _DASHED_GPU_LIST.fullmatch(arg):
                arg = f" {arg}"  # argparse never reads an argument that contains a space as an option
            in_gpu_ids = arg == "--gpu_ids" or (in_gpu_ids and not arg.startswith("-"))
            marked.append(arg)
        return super().parse_known_args(marked, namespace)


EXAMPLES = """examples:
  %(prog)s                                          the bundled portrait model on 0.0.0.0:9393
  %(prog)s --model seg/serving_server --port 9393 --thread 10 --gpu_ids 0     Paddle Serving's command line
  %(prog)s --model portrait seg --api_key_file keys.txt --ssl_certfile cert.pem --ssl_keyfile key.pem
  %(prog)s stop --port 9393                         drain, then stop the server on that port
  %(prog)s @server.flags --port 9393               flags from a file (shell-quoted, # comments; later flags win)

Paddle Serving 0.9's other flags are accepted too (docs/serve-flags.md)."""


def build_parser(prog: str = "python -m server.start") -> argparse.ArgumentParser:
    p = _Parser(
        prog=prog,
        description="Serve segmentation models over Paddle Serving's GeneralModelService (HTTP JSON/protobuf and "
        "gRPC), KServe v2 and an image API, all on one port.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("command", nargs="?", default="start", choices=("start", "stop", "kill", "check"),
                   help="start (default); stop (drain, then exit) or kill the server on --port (every one under "
                   "--workdir without --port); check: what this environment can run")  # fmt: skip
    p.add_argument(
        "--model",
        nargs="+",
        default=[DEFAULT_MODEL],
        help="models to serve side by side: serving_server dirs, repository entry dirs, or names in "
        "--repository; NAME=DIR serves DIR under NAME (default: the bundled portrait model)",
    )
    p.add_argument("--repository", default=None, help="model repository root (default: the bundled serving_models/)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port for every protocol (default: %(default)s)")
    p.add_argument("--host", default="0.0.0.0", help="address to bind (default: %(default)s)")
    p.add_argument(
        "--thread",
        type=int,
        default=None,
        help="inference worker processes per model (default: the CPUs this process may use, divided by "
        "--cpu_threads; with --gpu_ids at least one per id, the ids taken round-robin)",
    )
    p.add_argument(
        "--gpu_ids",
        nargs="+",
        default=[],
        help="per-model GPU lists, cycled over models, e.g. --gpu_ids 0,1 1 (-1 = CPU); workers take "
        "the ids round-robin",
    )
    p.add_argument(
        "--ir_optim",
        action="store_true",
        help="Paddle IR optimisation on GPU without TensorRT (always on for CPU oneDNN and TensorRT)",
    )
    mkl = p.add_mutually_exclusive_group()
    mkl.add_argument(
        "--use_mkl", action="store_true", help="force oneDNN on the CPU (default: on when the CPU has AVX)"
    )
    mkl.add_argument(
        "--no_mkl", action="store_true", help="turn oneDNN off (plain CPU kernels; then --ir_optim applies)"
    )
    p.add_argument("--use_trt", action="store_true", help="TensorRT (GPU; GPU 0 when --gpu_ids is not given)")
    p.add_argument("--precision", default="fp32", help="TensorRT precision: fp32, fp16 or int8 (with --use_trt)")
    p.add_argument("--mem_optim_off", action="store_true", help="turn Paddle's memory optimisation off")
    p.add_argument("--max_body_size", type=int, default=512 * MiB, help="largest request body in bytes (413 above)")
    p.add_argument("--workdir", default="workdir", help="runtime files go to WORKDIR_PORT/ (default: %(default)s)")
    p.add_argument(
        "--engine",
        choices=ENGINE_NAMES,
        default="auto",
        help="auto = ONNX Runtime when the model has a verified ONNX copy, else Paddle Inference",
    )
    p.add_argument("--batch_size", type=int, default=None,
                   help="largest dynamic batch (default: 8 on the CPU, 1 with --gpu_ids; README → GPU)")  # fmt: skip
    p.add_argument(
        "--batch_timeout_ms",
        type=float,
        default=0.0,
        help="how long an idle worker waits to fill a batch (default: %(default)s: batches form under load)",
    )
    p.add_argument(
        "--max_queue", type=int, default=256, help="queued requests per model before 429 (default: %(default)s)"
    )
    p.add_argument("--request_timeout_ms", type=float, default=30000, help="deadline per request; 504 after it")
    p.add_argument("--cpu_threads", type=int, default=None, help="math threads per worker (default: 1)")
    p.add_argument("--cpu_math_thread_num", type=int, default=None, help="Paddle Serving's name for --cpu_threads")
    p.add_argument("--runtime_thread_num", type=int, nargs="+", default=None,
                   help="Paddle Serving's per-model predictor count: worker processes per model, cycled over "
                   "--model (0: --thread's count)")  # fmt: skip
    p.add_argument("--batch_infer_size", type=int, nargs="+", default=None,
                   help="Paddle Serving's per-model largest batch, cycled over --model (--batch_size wins)",
                   )  # fmt: skip
    p.add_argument("--max_image_pixels", type=int, default=40_000_000, help="largest image (width x height) accepted")
    p.add_argument(
        "--max_header_bytes",
        type=int,
        default=64 * 1024,
        help="largest HTTP request line + headers; 431 above (default: %(default)s)",
    )
    p.add_argument(
        "--header_timeout_ms",
        type=float,
        default=20000,
        help="a request head (or a new connection's first bytes) must arrive within this; 408 and close after "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--api_key_file",
        default=None,
        help="require an API key (Authorization: Bearer KEY or X-API-Key: KEY) on every route but /health; one "
        "key per line, # comments allowed. Env SEGSERVING_API_KEYS (comma-separated) adds keys",
    )
    p.add_argument("--ssl_certfile", default=None, help="PEM certificate (chain): HTTPS and gRPC over TLS on --port")
    p.add_argument("--ssl_keyfile", default=None, help="PEM private key of --ssl_certfile (if not in that file)")
    p.add_argument("--ssl_ca_certs", default=None, help="PEM CA bundle: clients must present a certificate it signed")
    p.add_argument(
        "--cors_origins",
        nargs="+",
        default=[],
        help="browser origins allowed to call the server (e.g. https://app.example.com; * for any); default none",
    )
    p.add_argument("--metrics_auth", action="store_true", help="with API keys, /metrics needs a key too")
    p.add_argument("--enable_prometheus", action="store_true",
                   help="also serve /metrics on --prometheus_port (no API key there), as Paddle Serving did",
                   )  # fmt: skip
    p.add_argument("--prometheus_port", type=int, default=19393, help="port of --enable_prometheus (default: 19393)")
    p.add_argument(
        "--max_connections",
        type=int,
        default=1000,
        help="open client connections; at the cap idle ones are closed to make room, and with none idle a new "
        "one gets 503 (default: %(default)s; 0: no cap)",
    )
    p.add_argument(
        "--rate_limit",
        type=float,
        default=0.0,
        help="with API keys: inference requests per second per key (token bucket, bursts up to one second's "
        "worth); 429 with Retry-After beyond (default: no limit)",
    )
    p.add_argument(
        "--drain_timeout_ms",
        type=float,
        default=20000,
        help="on SIGTERM, how long in-flight requests may take to finish (default: %(default)s)",
    )
    p.add_argument(
        "--direct_http",
        action="store_true",
        help="inference workers of the first model serve HTTP/1.1 connections themselves: the front passes each "
        "new connection to the worker holding the fewest, which answers the inference routes in-process and asks "
        "the front for everything else (not with TLS or --rate_limit, whose state is the front's)",
    )
    add_legacy_flags(p)
    return p


def _gpu_lists(values: list[str], models: int, parser: argparse.ArgumentParser) -> list[tuple[int, ...]]:
    lists = []
    for value in (v.strip() for v in values):
        try:
            ids = tuple(int(x) for x in value.split(",") if x.strip())
        except ValueError:
            parser.error(f"--gpu_ids: {value!r} is not a comma-separated list of integers")
        if -1 in ids and len(set(ids)) > 1:
            parser.error(f"--gpu_ids: {value!r} mixes -1 (CPU) with GPU ids")
        lists.append(() if ids in ((), (-1,)) else ids)
    return [lists[i % len(lists)] if lists else () for i in range(models)]


def _has_avx() -> bool:
    try:
        return " avx" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return True


def _refuse(message: str, code: int = 2) -> NoReturn:
    """A server that cannot run as asked: one line, without the usage; exit 2 like a flag error, or 1 for a Paddle
    Serving flag refused (docs/serve-flags.md)."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def _cycled(values: list[int] | None, count: int, flag: str) -> list[int | None]:
    """A Paddle Serving per-model list, cycled over `count` models (None where not given)."""
    if not values:
        return [None] * count
    if any(v < 0 for v in values):
        _refuse(f"{flag} values must be >= 0, got {values}", 1)
    return [values[i % len(values)] for i in range(count)]


def _precision(args: argparse.Namespace) -> Precision:
    """The TensorRT precision to use: --precision as Paddle Serving read it, warned about where it does nothing."""
    value = args.precision.lower()
    if value not in ("fp32", "fp16", "int8", "bf16"):
        _refuse(f"--precision {args.precision!r}: use fp32, fp16 or int8", 1)
    if value != "fp32" and not args.use_trt:
        log.warning("--precision %s has no effect without --use_trt: the model runs in fp32", value)
        return "fp32"
    if value == "bf16":
        log.warning("--precision bf16 has no effect here (Paddle Serving used it for oneDNN on the CPU): fp32")
        return "fp32"
    return cast(Precision, value)


def settings_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> ServerSettings:
    """Validate the flags against each other and resolve the models."""
    refusal = check_legacy_flags(args)
    if refusal:
        _refuse(refusal, 1)
    for flag in ("thread", "batch_size", "max_queue", "cpu_threads", "cpu_math_thread_num", "port", "max_body_size",
                 "max_image_pixels", "max_header_bytes", "header_timeout_ms", "prometheus_port"):  # fmt: skip
        value = getattr(args, flag)
        if value is not None and value < (0 if flag == "port" else 1):
            parser.error(f"--{flag} must be positive")
    repo = ModelRepository(Path(args.repository)) if args.repository else ModelRepository()
    try:
        specs = [repo.resolve(ref) for ref in args.model]
    except (KeyError, FileNotFoundError, ValueError) as exc:
        _refuse(str(exc).strip("'\""))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        parser.error(f"two --model entries have the same name: {names}")
    gpu_lists = _gpu_lists(args.gpu_ids, len(specs), parser)
    if args.use_trt and not any(gpu_lists):
        gpu_lists = [(0,)] * len(specs)
    precision = _precision(args)
    cpu_threads = args.cpu_threads or args.cpu_math_thread_num or 1
    cpus = available_cpus()
    if args.thread and args.thread * cpu_threads > cpus and not any(gpu_lists):
        log.warning("--thread %d x --cpu_threads %d is more than the %d CPU(s) this process may use "
                    "(affinity and cgroup quota): workers will take turns on them", args.thread, cpu_threads,
                    cpus)  # fmt: skip
    runtime_threads = _cycled(args.runtime_thread_num, len(specs), "--runtime_thread_num")
    batch_infer = _cycled(args.batch_infer_size, len(specs), "--batch_infer_size")
    models = []
    for spec, gpus, predictors, infer_batch in zip(specs, gpu_lists, runtime_threads, batch_infer, strict=True):
        try:
            engine = resolve_engine_name(spec.config, args.engine)
        except ValueError as exc:
            _refuse(str(exc) if spec.name in str(exc) else f"model {spec.name!r}: {exc}")
        if engine == "paddle" and importlib.util.find_spec("paddle") is None:
            _refuse(f"model {spec.name!r} runs on Paddle Inference: {PADDLE_MISSING}")
        use_mkldnn = not args.no_mkl and (args.use_mkl or _has_avx())
        options = EngineOptions(
            cpu_threads=cpu_threads,
            ir_optim=bool(args.ir_optim or args.use_trt or (use_mkldnn and not gpus)),
            use_mkldnn=use_mkldnn,
            mem_optim=not args.mem_optim_off,
            use_trt=args.use_trt,
            precision=precision,
        )
        # the CPU half of a request (decode, resize, encode) runs in its worker, also on a GPU: one per CPU
        workers = predictors or args.thread or max(len(gpus), cpus // cpu_threads, 1)
        batch_size = args.batch_size or infer_batch or (GPU_BATCH_SIZE if gpus else CPU_BATCH_SIZE)
        policy = BatchPolicy(batch_size, args.batch_timeout_ms / 1000, args.max_queue)
        models.append(ModelSettings(spec, args.engine, workers, gpus, options, policy))
    try:
        keys = ApiKeys.from_environment(args.api_key_file)
    except ValueError as exc:
        _refuse(str(exc))
    tls = None
    if args.ssl_certfile:
        for flag in ("ssl_certfile", "ssl_keyfile", "ssl_ca_certs"):
            if getattr(args, flag) and not Path(getattr(args, flag)).is_file():
                _refuse(f"--{flag} {getattr(args, flag)} is not a file")
        tls = TlsFiles(args.ssl_certfile, args.ssl_keyfile, args.ssl_ca_certs)
    elif args.ssl_keyfile or args.ssl_ca_certs:
        parser.error("--ssl_keyfile and --ssl_ca_certs need --ssl_certfile")
    if args.metrics_auth and not keys.enabled:
        parser.error("--metrics_auth needs API keys (--api_key_file or SEGSERVING_API_KEYS)")
    if args.max_connections < 0:
        parser.error(f"--max_connections must be >= 0 (0: no cap), got {args.max_connections}")
    if args.rate_limit < 0:
        parser.error(f"--rate_limit must be >= 0, got {args.rate_limit:g}")
    if args.rate_limit and not keys.enabled:
        parser.error("--rate_limit is per API key: it needs keys (--api_key_file or SEGSERVING_API_KEYS)")
    if args.enable_prometheus and args.metrics_auth:
        _refuse("--enable_prometheus serves /metrics without API keys on --prometheus_port: drop it or "
                "--metrics_auth", 1)  # fmt: skip
    if args.enable_prometheus and args.prometheus_port == args.port:
        _refuse(f"--prometheus_port {args.prometheus_port} is --port: /metrics is served there already", 1)
    direct = args.direct_http and tls is None and not args.rate_limit
    if args.direct_http and not direct:
        log.warning("--direct_http is off: with %s every connection goes through the front",
                    "TLS" if tls is not None else "--rate_limit")  # fmt: skip
    return ServerSettings(
        models=tuple(models), host=args.host, port=args.port, max_body_size=args.max_body_size,
        request_timeout_s=args.request_timeout_ms / 1000, drain_timeout_s=args.drain_timeout_ms / 1000,
        limits=ImageLimits(max_pixels=args.max_image_pixels), workdir=args.workdir, api_keys=keys,
        metrics_auth=args.metrics_auth, max_header_bytes=args.max_header_bytes,
        header_timeout_s=args.header_timeout_ms / 1000, cors_origins=tuple(args.cors_origins),
        tls=tls, rate_limit=args.rate_limit, max_connections=args.max_connections,
        prometheus_port=args.prometheus_port if args.enable_prometheus else None, direct_http=direct,
    )  # fmt: skip


def main(argv: list[str] | None = None, prog: str = "python -m server.start") -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command != "start":
        from server import control

        if args.command == "check":
            return control.check()
        given = sys.argv[1:] if argv is None else argv  # without --port: every server under --workdir
        port = args.port if any(a == "--port" or a.startswith("--port=") for a in given) else None
        return control.stop(args.workdir, port, kill=args.command == "kill")
    settings = settings_from_args(args, parser)
    from server.runner import Runner

    tune_malloc()  # request bodies pass through the front too
    return Runner(settings).run()
