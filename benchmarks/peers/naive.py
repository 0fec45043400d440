"""The naive serving pattern of PaddleSeg tutorials and FastDeploy's simple serving, as a benchmark peer.

    python -m benchmarks.peers.naive --model portrait --engine onnxruntime|paddle --port P [--threads 1]

ONE Flask process on Werkzeug's built-in threaded server (a new thread per request), ONE predictor whose
calls a lock serialises, base64 JSON in and out. The model code is SegServing's own (segcore preprocessing,
engine, postprocessing), so only the serving around it differs:

    POST /predict  {"image": "<base64 JPEG>"}
        -> {"label_map": [row-major class ids], "shape": [H, W], "score_map": [], "contain_score_map": false}
           (the fields of FastDeploy's SegmentationResult as JSON; --response label_png answers
           {"label_png": "<base64 PNG>"} instead, the encoding of our image API and of the LitServe peer)
    GET  /health   200; the server starts listening only once the model is loaded

Werkzeug's per-request access log is off unless --access-log (it writes a line per request to stderr).
"""

from __future__ import annotations

import argparse
import base64
import logging
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from flask import Flask, jsonify, request

from benchmarks.peers.common import BadRequest, add_model_args, decode_b64_image, load_pipeline
from segcore.pipeline import SegmentationPipeline
from segcore.postprocess import postprocess


def create_app(pipeline: SegmentationPipeline, response: str = "label_map", infer_thread: bool = False) -> Flask:
    """The Flask app around one pipeline. infer_thread: run every predictor call on one long-lived thread
    (Paddle's oneDNN sets itself up again on each new thread) instead of the request thread, under the lock."""
    app = Flask("segserving-naive-peer")
    lock = threading.Lock()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predictor") if infer_thread else None
    post = pipeline.config.postprocess
    assert post is not None

    def infer(tensor):
        with lock:
            return pipeline.infer([tensor])[0]

    @app.get("/health")
    def health():
        return "ok", 200

    @app.post("/predict")
    def predict():
        try:
            image = decode_b64_image(request.get_json(force=True, silent=True))
            tensor, trans_info = pipeline.preprocess(image)
        except (BadRequest, ValueError) as exc:
            return jsonify({"error": str(exc)}), 400
        output = executor.submit(infer, tensor).result() if executor else infer(tensor)
        label_map = postprocess(output, post, trans_info, want_scores=False).label_map
        if response == "label_png":
            from segcore.images import label_png

            return jsonify({"label_png": base64.b64encode(label_png(label_map)).decode("ascii")})
        return jsonify(
            {
                "label_map": label_map.ravel().tolist(),
                "shape": list(label_map.shape),
                "score_map": [],
                "contain_score_map": False,
            }
        )

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers.naive", description=__doc__.split("\n\n")[0])
    add_model_args(parser)
    parser.add_argument("--response", choices=["label_map", "label_png"], default="label_map")
    parser.add_argument("--infer-thread", action="store_true", help="predictor calls on one long-lived thread")
    parser.add_argument("--access-log", action="store_true", help="keep Werkzeug's per-request log lines")
    args = parser.parse_args(argv)
    pipeline = load_pipeline(args.model, args.engine, args.threads)
    if not args.access_log:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = create_app(pipeline, args.response, args.infer_thread)
    print(
        f"naive peer: {pipeline.config.name} on {pipeline.engine.name}, http://{args.host}:{args.port}",
        file=sys.stderr,
        flush=True,
    )
    app.run(host=args.host, port=args.port, threaded=True, debug=False, use_reloader=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
