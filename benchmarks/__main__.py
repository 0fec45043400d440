"""`python -m benchmarks COMMAND [args]`: one entry point for the benchmark and report tools."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "parity": ("benchmarks.fidelity", "PaddleSeg fidelity: labels vs PaddleSeg's pipeline, per export and engine"),
    "run": ("benchmarks.run", "server vs in-process limit vs peers: throughput and latency"),
    "profile": ("benchmarks.profile", "CPU time per stage: the worker's code vs the independent pipeline"),
    "overload": ("benchmarks.overload", "goodput vs offered load with a small queue and retrying clients"),
    "bombs": ("benchmarks.bombs", "what hostile bodies cost: answer, time and peak memory"),
    "evaluate": ("benchmarks.evaluate", "accuracy (mIoU) of a served model on a labelled set"),
    "gpu": ("benchmarks.gpu", "GPU: dynamic batching, engines, workers per GPU, img/s vs batch size"),
    "bulk": ("benchmarks.bulk", "segserving bulk (Ray Data) vs the server on a folder of photos"),
    "scaling": ("benchmarks.scaling", "cost per image vs photo size and batch size (plot for docs/)"),
    "models": ("benchmarks.models", "build random-weight benchmark models"),
    "exports": ("benchmarks.paddleseg_exports", "build the PaddleSeg exports the fidelity tests use"),
}


def main(argv: list[str], prog: str = "python -m benchmarks") -> int:
    if argv and argv[0] == "--gpu":  # `python -m benchmarks --gpu` reads as the spelling of `gpu`
        argv = ["gpu", *argv[1:]]
    if not argv or argv[0] not in COMMANDS:
        listing = "\n".join(f"  {name:<9} {help_}" for name, (_, help_) in COMMANDS.items())
        examples = (
            "examples:\n  run --image_size 640x480 --duration 8     served vs the independent limit and peers\n"
            "  profile --size 640x480                    CPU time per stage\n"
            "  gpu                                       on a GPU machine: img/s vs batch size"
        )
        print(f"usage: {prog} COMMAND [args]\n\ncommands:\n{listing}\n\n{examples}", file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
