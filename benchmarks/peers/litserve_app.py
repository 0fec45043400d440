"""The same model code behind LitServe, as a benchmark peer.

    python -m benchmarks.peers.litserve_app --model portrait --engine onnxruntime --port P --workers 2

A LitAPI whose setup() builds the segcore pipeline in each inference worker process:
    POST /predict  {"image": "<base64 JPEG>"} -> {"label_png": "<base64 PNG>"} (label map at the original size,
                   the encoding of our image API)
    GET  /health   LitServe's: 200 once every inference worker has finished setup(), 503 before

LitServe options chosen for CPU throughput (litserve 0.2.19): accelerator="cpu" on one device with
`--workers` inference processes (workers_per_device), max_batch_size=1 (no batching), fast_queue=True (ZeroMQ
between API servers and workers instead of multiprocessing queues), track_requests=False (no active-request
counter middleware), API servers as processes (one per inference worker unless --api-servers), log level
warning (no access log), no client.py written. Exits with code 3 if litserve cannot be imported.
"""

from __future__ import annotations

import argparse
import base64
import multiprocessing
import os
import signal
import sys
from typing import Any

LITSERVE_VERSION = "0.2.19"
_MAIN_PID = os.getpid()
EXIT_NO_LITSERVE = 3

try:
    import litserve as ls
except Exception as exc:  # any import failure means the peer cannot run
    ls = None
    _IMPORT_ERROR: Exception | None = exc
else:
    _IMPORT_ERROR = None


if ls is not None:

    class SegmentationLitAPI(ls.LitAPI):
        """decode (base64 JPEG) -> segcore preprocess -> engine -> segcore postprocess -> label PNG."""

        def __init__(self, model: str, engine: str, threads: int) -> None:
            super().__init__(max_batch_size=1, api_path="/predict")
            self.model_ref, self.engine_name, self.threads = model, engine, threads

        def setup(self, device: Any) -> None:
            from benchmarks.peers.common import load_pipeline

            self.pipeline = load_pipeline(self.model_ref, self.engine_name, self.threads)

        def decode_request(self, request):  # no annotation: LitServe then hands over the parsed JSON body
            from fastapi import HTTPException

            from benchmarks.peers.common import BadRequest, decode_b64_image

            try:
                return decode_b64_image(request)
            except BadRequest as exc:
                raise HTTPException(400, str(exc)) from None

        def predict(self, image: Any) -> Any:
            return self.pipeline.segment(image).label_map

        def encode_response(self, label_map: Any) -> dict[str, str]:
            from segcore.images import label_png

            return {"label_png": base64.b64encode(label_png(label_map)).decode("ascii")}


def main(argv: list[str] | None = None) -> int:
    from benchmarks.peers.common import add_model_args

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.peers.litserve_app", description=__doc__.split("\n\n")[0]
    )
    add_model_args(parser)
    parser.add_argument("--workers", type=int, default=2, help="inference worker processes (workers_per_device)")
    parser.add_argument("--api-servers", type=int, default=None, help="uvicorn API server processes (default: workers)")
    parser.add_argument("--timeout", type=float, default=30.0, help="LitServe request timeout in seconds")
    parser.add_argument("--no-fast-queue", action="store_true", help="multiprocessing queues instead of ZeroMQ")
    args = parser.parse_args(argv)
    if ls is None:
        print(
            f"litserve is not usable here ({type(_IMPORT_ERROR).__name__}: {_IMPORT_ERROR}); "
            f"pip install litserve=={LITSERVE_VERSION}",
            file=sys.stderr,
        )
        return EXIT_NO_LITSERVE
    if args.host not in ("127.0.0.1", "0.0.0.0", "::"):
        parser.error("LitServe only binds 127.0.0.1, 0.0.0.0 or ::")
    # Import the class by its module name, so the spawned workers unpickle it without re-running __main__.
    from benchmarks.peers.litserve_app import SegmentationLitAPI as api_class

    server = ls.LitServer(
        api_class(args.model, args.engine, args.threads),
        accelerator="cpu",
        devices=1,
        workers_per_device=args.workers,
        timeout=args.timeout,
        track_requests=False,
        fast_queue=not args.no_fast_queue,
    )
    print(f"litserve peer: {args.model} on {args.engine}, http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    # LitServe shuts its processes down on KeyboardInterrupt only; a plain SIGTERM would orphan them.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        server.run(
            host=args.host,
            port=args.port,
            num_api_servers=args.api_servers,
            log_level="warning",
            generate_client_file=False,
            api_server_worker_type="process",
        )
    except KeyboardInterrupt:
        pass
    finally:
        _stop_children()
    return 0


def _raise_interrupt(signum: int, frame: Any) -> None:
    if os.getpid() != _MAIN_PID:  # a forked API server re-raising the signal after its own graceful shutdown
        raise SystemExit(0)
    raise KeyboardInterrupt


def _stop_children(timeout: float = 10.0) -> None:
    """Whatever LitServe's own shutdown left running: workers, API servers, the multiprocessing manager."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    children = multiprocessing.active_children()
    for child in children:
        child.terminate()
    for child in children:
        child.join(timeout)
        if child.is_alive():
            child.kill()


if __name__ == "__main__":
    sys.exit(main())
