"""The engine interface and the options every engine understands."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

Precision = Literal["fp32", "fp16", "int8"]


@dataclass(frozen=True)
class EngineOptions:
    """Device and optimisation settings (Paddle Serving's flag meanings where they exist)."""

    device: Literal["cpu", "gpu"] = "cpu"
    gpu_id: int = 0
    cpu_threads: int = 1
    ir_optim: bool = True
    use_mkldnn: bool = True
    mem_optim: bool = True
    use_trt: bool = False
    precision: Precision = "fp32"
    trt_min_subgraph_size: int = 3


class Engine(Protocol):
    """A loaded model. `run` is called from one thread at a time per engine instance."""

    name: str
    input_names: list[str]
    output_names: list[str]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch; returns every output by its Paddle output name."""
        ...
