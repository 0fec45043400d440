"""The same model code behind Ray Serve, as a benchmark peer.

    python -m benchmarks.peers.ray_serve_app --model portrait --engine onnxruntime --port P --replicas 2

A local Ray instance (no dashboard) and one Serve deployment with `--replicas` replicas of one CPU each, each
owning a segcore pipeline; Ray Serve's HTTP proxy in front:
    POST /predict  {"image": "<base64 JPEG>"} -> {"label_png": "<base64 PNG>"} (as the other peers)
    GET  /health   200 once the deployment is up (serve.run returns when its replicas are ready)
Exits with code 3 if ray[serve] cannot be imported.
"""

from __future__ import annotations

import argparse
import base64
import os
import signal
import sys
import threading
from typing import Any

RAY_VERSION = "2.60.0"
EXIT_NO_RAY = 3

try:
    import ray
    from ray import serve
except Exception as exc:  # any import failure means the peer cannot run
    ray = serve = None
    _IMPORT_ERROR: Exception | None = exc
else:
    _IMPORT_ERROR = None


class Segmenter:
    """decode (base64 JPEG) -> segcore preprocess -> engine -> segcore postprocess -> label PNG, per replica."""

    def __init__(self, model: str, engine: str, threads: int) -> None:
        from benchmarks.peers.common import load_pipeline

        self.pipeline = load_pipeline(model, engine, threads)

    async def __call__(self, request: Any) -> Any:
        from starlette.responses import JSONResponse, PlainTextResponse

        from benchmarks.peers.common import BadRequest, decode_b64_image
        from segcore.images import label_png

        if request.url.path == "/health":
            return PlainTextResponse("ok")
        if request.method != "POST" or request.url.path != "/predict":
            return PlainTextResponse("not found", status_code=404)
        try:
            image = decode_b64_image(await request.json())
        except (BadRequest, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        label_map = self.pipeline.segment(image).label_map
        return JSONResponse({"label_png": base64.b64encode(label_png(label_map)).decode("ascii")})


def main(argv: list[str] | None = None) -> int:
    from benchmarks.peers.common import add_model_args

    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers.ray_serve_app",
                                     description=__doc__.split("\n\n")[0])  # fmt: skip
    add_model_args(parser)
    parser.add_argument("--replicas", type=int, default=2, help="deployment replicas, one CPU each")
    args = parser.parse_args(argv)
    if ray is None or serve is None:
        print(f"ray[serve] is not usable here ({type(_IMPORT_ERROR).__name__}: {_IMPORT_ERROR}); "
              f"pip install 'ray[serve]=={RAY_VERSION}'", file=sys.stderr)  # fmt: skip
        return EXIT_NO_RAY
    ray.init(num_cpus=max(args.replicas, os.cpu_count() or 1), include_dashboard=False, log_to_driver=False,
             configure_logging=False)  # fmt: skip
    stop = threading.Event()  # handlers set after ray.init, which installs its own (aborting on SIGTERM)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        serve.start(http_options={"host": args.host, "port": args.port}, logging_config={"log_level": "WARNING"})
        deployment = serve.deployment(Segmenter, num_replicas=args.replicas, ray_actor_options={"num_cpus": 1})
        serve.run(deployment.bind(args.model, args.engine, args.threads), name="segment", route_prefix="/")
        print(f"ray serve peer: {args.model} on {args.engine}, http://{args.host}:{args.port}", file=sys.stderr,
              flush=True)  # fmt: skip
        stop.wait()
    finally:
        serve.shutdown()
        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
