"""A worker's warm-up runs the request path at every batch size the front may send it (a GPU engine picks its
kernels per input shape on first use); GPU workers warm up to --batch_size, CPU workers batch 1 only."""

from __future__ import annotations

import numpy as np

from segcore.engines import EngineOptions, create_engine
from segcore.engines.base import Engine
from segcore.images import ImageLimits
from segcore.repository import ModelRepository
from server.settings import BatchPolicy, ModelSettings
from server.workers.handler import JobHandler
from server.workers.pool import worker_specs
from server.workers.process import _warm_up


class _Recording:
    """The real engine, recording the batch size of every run."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.batches = engine, []
        self.name, self.input_names, self.output_names = engine.name, engine.input_names, engine.output_names

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.batches.append(next(iter(feeds.values())).shape[0])
        return self.engine.run(feeds)


def test_warm_up_runs_the_image_path_at_every_batch_size() -> None:
    spec = ModelRepository().resolve("portrait")
    assert spec.config is not None
    engine = _Recording(create_engine(spec.server_dir, spec.config, "onnxruntime", EngineOptions()))
    _warm_up(JobHandler(spec, engine, ImageLimits()), 4)
    assert engine.batches == [1, 2, 3, 4]


def test_gpu_workers_warm_up_to_batch_size_and_cpu_workers_to_one() -> None:
    spec = ModelRepository().resolve("portrait")
    batch = BatchPolicy(batch_size=6)
    gpu = worker_specs(ModelSettings(spec, "onnxruntime", 2, (0,), batch=batch), ImageLimits(), 2**20)
    cpu = worker_specs(ModelSettings(spec, "onnxruntime", 2, batch=batch), ImageLimits(), 2**20)
    assert [s.warm_batches for s in gpu] == [6, 6] and [s.options.device for s in gpu] == ["gpu", "gpu"]
    assert [s.warm_batches for s in cpu] == [1, 1]


def test_warm_up_loads_the_id_photo_face_models() -> None:
    """A worker that can make ID photos loads BlazeFace and the landmark model before it says it is ready."""
    import idphoto.face

    spec = ModelRepository().resolve("portrait")
    assert spec.config is not None
    idphoto.face._finder = None  # as in a fresh worker process
    handler = JobHandler(spec, create_engine(spec.server_dir, spec.config, "onnxruntime", EngineOptions()),
                         ImageLimits())  # fmt: skip
    assert handler.id_photos is not None
    _warm_up(handler, 1)
    assert idphoto.face._finder is not None
