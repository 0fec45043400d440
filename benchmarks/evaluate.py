"""Accuracy of a served model on a PaddleSeg-format labelled set, PaddleSeg `tools/val.py` style; optional engine
parity report in-process.

    python -m benchmarks.evaluate --server 127.0.0.1:9393 --model portrait \\
        --dataset_root data/val --val_path data/val/val.txt [--num_classes 2] [--out report.json]
    python -m benchmarks.evaluate --model_dir serving_models/portrait --dataset_root data/val \\
        --val_path data/val/val.txt --parity paddle,onnxruntime,fp16

Exit codes: 0 done; 1 nothing could be evaluated (every request failed, every engine skipped); 2 usage or dataset
error (bad list line, missing file, unreadable label, label of another size than its image).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.dataset import DatasetError, Sample, check_shapes, read_label, read_list
from benchmarks.metrics import AreaAccumulator, SegMetrics
from client_sdk import SegClient, SegResult, SegServingError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.evaluate",
        description="mIoU / Acc / Kappa / Dice of a served segmentation model on a PaddleSeg-format labelled set "
        "(areas summed over the set, labels at the original image size), and an optional engine parity report.",
    )
    parser.add_argument("--server", help="HOST:PORT of a SegServing server to evaluate")
    parser.add_argument("--model", help="served model name (with --server); with --parity, a repository name or dir")
    parser.add_argument("--model_dir", type=Path, help="model dir for --parity (default: --model in the repository)")
    parser.add_argument("--dataset_root", type=Path, required=True, help="root the list's paths are relative to")
    parser.add_argument("--val_path", type=Path, required=True, help="list file: 'image label' per line")
    parser.add_argument("--num_classes", type=int, help="number of classes (default: what the model reports)")
    parser.add_argument("--ignore_index", type=int, default=255, help="label value left out (default: 255)")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (default: 4)")
    parser.add_argument("--protocol", choices=("http", "grpc"), default="http")
    parser.add_argument("--timeout", type=float, default=60.0, help="per-request timeout in seconds (default: 60)")
    parser.add_argument("--out", type=Path, default=Path("eval_report.json"), help="JSON report path")
    parser.add_argument("--parity", metavar="ENGINES", help="in-process engines to compare: paddle,onnxruntime,fp16")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return parser


def _num_classes(result: SegResult) -> int | None:
    return result.num_classes or (len(result.class_names) if result.class_names else None)


def evaluate_server(samples: Sequence[Sample], args: argparse.Namespace) -> tuple[dict[str, Any], SegMetrics | None]:
    """Segment every sample on the server, `concurrency` at a time, accumulating areas in list order as results
    arrive. Failed requests are counted and listed; dataset errors raise DatasetError."""
    acc: AreaAccumulator | None = None
    class_names: list[str] | None = None
    failures: list[dict[str, Any]] = []
    start = time.perf_counter()
    with SegClient(args.server, model=args.model, protocol=args.protocol, timeout=args.timeout) as client:

        def one(sample: Sample) -> SegResult | SegServingError:
            try:
                return client.segment(sample.image)
            except SegServingError as exc:
                return exc

        pool = ThreadPoolExecutor(max(1, args.concurrency))
        try:
            results = pool.map(one, samples)
            bar = tqdm(results, total=len(samples), disable=not args.progress, desc="evaluate", unit="img")
            for sample, result in zip(samples, bar, strict=True):
                if isinstance(result, SegServingError):
                    failures.append({"image": str(sample.image), "line": sample.line,
                                     "error": f"{type(result).__name__}: {result.message}"})  # fmt: skip
                    continue
                if acc is None:
                    num_classes = args.num_classes or _num_classes(result)
                    if num_classes is None:
                        raise DatasetError(f"the server does not say how many classes {args.model!r} has: "
                                           "pass --num_classes")  # fmt: skip
                    acc, class_names = AreaAccumulator(num_classes, args.ignore_index), result.class_names
                label = read_label(sample.label)
                check_shapes(result.label_map, label, sample)
                acc.add(result.label_map, label)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    report: dict[str, Any] = {
        "server": args.server,
        "protocol": args.protocol,
        "num_classes": acc.num_classes if acc else args.num_classes,
        "class_names": class_names,
        "images": acc.images if acc else 0,
        "failed": len(failures),
        "failures": failures,
        "seconds": round(time.perf_counter() - start, 3),
    }
    metrics = acc.metrics() if acc else None
    if acc is not None and metrics is not None:
        report.update(metrics.to_dict(), areas=acc.areas())
    return report, metrics


def run_parity(samples: Sequence[Sample], args: argparse.Namespace) -> dict[str, Any]:
    """The in-process engine comparison (imports segcore, paddle and onnxruntime only here)."""
    from benchmarks import parity
    from segcore.repository import ModelRepository

    try:
        choices = parity.parse_engines(args.parity)
        spec = ModelRepository().resolve(str(args.model_dir or args.model))
    except (ValueError, KeyError, FileNotFoundError) as exc:
        raise DatasetError(str(exc).strip("'\"")) from None
    post = spec.config.postprocess if spec.config else None
    if post is None:
        raise DatasetError(f"model {spec.name!r} has no postprocessing config: convert it from a dir with deploy.yaml")
    num_classes = args.num_classes or post.num_classes or (len(post.class_names) if post.class_names else None)
    if num_classes is None:
        raise DatasetError(f"model {spec.name!r} does not say how many classes it has: pass --num_classes")
    threads = min(4, os.cpu_count() or 1)
    return parity.run_parity(spec, samples, choices, num_classes, args.ignore_index, args.progress, threads)


def _print_evaluation(report: dict[str, Any], metrics: SegMetrics | None) -> None:
    if report["failed"]:
        print(f"[EVAL] {report['failed']} request(s) failed; first: {report['failures'][0]['error']}", file=sys.stderr)
    print(metrics.summary(report["images"]) if metrics else "[EVAL] #Images: 0 (no image could be evaluated)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.server and not args.parity:
        parser.error("give --server (evaluate a served model) and/or --parity (compare engines in-process)")
    if args.server and not args.model:
        parser.error("--server needs --model")
    if args.parity and not (args.model_dir or args.model):
        parser.error("--parity needs --model_dir or --model")
    if args.num_classes is not None and args.num_classes < 1:
        parser.error("--num_classes must be >= 1")
    report: dict[str, Any] = {"model": args.model, "dataset_root": str(args.dataset_root),
                              "val_path": str(args.val_path), "ignore_index": args.ignore_index}  # fmt: skip
    ok = True
    try:
        samples = read_list(args.dataset_root, args.val_path)
        report["num_images"] = len(samples)
        if args.server:
            evaluation, metrics = evaluate_server(samples, args)
            report["evaluation"] = evaluation
            _print_evaluation(evaluation, metrics)
            ok = evaluation["images"] > 0
        if args.parity:
            from benchmarks.parity import summary

            report["parity"] = result = run_parity(samples, args)
            print(summary(result))
            ok = ok and result["reference"] is not None
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"report: {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
