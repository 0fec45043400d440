"""JobHandler inside a worker: jobs whose inputs share a shape run as one engine batch, others apart, and every
job gets its own answer in order. A real engine (the tiny dynamic-shape model on Paddle Inference) behind a
wrapper that records what it was asked to run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson

from segcore.engines import Engine, EngineOptions, create_engine
from segcore.images import ImageLimits
from segcore.repository import load_spec
from server.jobs import Job, JobKind
from server.workers.handler import JobHandler

MODEL = "legacy_multi"  # input x: N x 3 x H x W with dynamic H, W (even)


class Recording:
    """An engine that remembers the batch shapes it ran."""

    def __init__(self, inner: Engine) -> None:
        self.inner, self.name, self.shapes = inner, inner.name, []

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.shapes.append(next(iter(feeds.values())).shape)
        return self.inner.run(feeds)


def job(i: int, height: int, width: int) -> Job:
    data = np.random.default_rng(i).normal(0, 1, (1, 3, height, width)).astype(np.float32)
    tensor = {"float_data": data.ravel().tolist(), "shape": list(data.shape), "elem_type": 1, "name": "x"}
    return Job(i, JobKind.PADDLE_JSON, orjson.dumps({"tensor": [tensor], "fetch_var_names": []}))


def test_same_shapes_share_one_engine_run_and_answers_keep_their_order(converted: Callable[[str], Path]) -> None:
    spec = load_spec(converted(MODEL))
    assert spec.config is not None
    engine = Recording(create_engine(spec.server_dir, spec.config, "paddle", EngineOptions()))
    handler = JobHandler(spec, engine, ImageLimits())
    jobs = [job(1, 24, 40), job(2, 16, 16), job(3, 24, 40), job(4, 24, 40)]
    results = handler.handle(jobs)
    assert sorted(engine.shapes) == [(1, 3, 16, 16), (3, 3, 24, 40)]  # one run per shape
    assert [r.id for r in results] == [1, 2, 3, 4] and all(r.status == 200 for r in results)
    # each answer is the job's own: the same as running that job alone
    alone = JobHandler(spec, engine, ImageLimits())
    for original, result in zip(jobs, results, strict=True):
        single = alone.handle([Job(original.id, original.kind, original.body)])[0]
        assert orjson.loads(single.body)["outputs"] == orjson.loads(result.body)["outputs"]


def test_a_bad_job_fails_alone_and_the_batch_runs(converted: Callable[[str], Path]) -> None:
    spec = load_spec(converted(MODEL))
    assert spec.config is not None
    engine = Recording(create_engine(spec.server_dir, spec.config, "paddle", EngineOptions()))
    bad = Job(2, JobKind.PADDLE_JSON, b"{not json")
    late = Job(3, JobKind.PADDLE_JSON, job(3, 24, 40).body, deadline=0.0)  # its deadline passed while queued
    results = JobHandler(spec, engine, ImageLimits()).handle([job(1, 24, 40), bad, late, job(4, 24, 40)])
    assert [(r.id, r.status, r.code) for r in results] == [
        (1, 200, ""), (2, 400, "invalid_input"), (3, 504, "deadline_exceeded"), (4, 200, "")]  # fmt: skip
    assert engine.shapes == [(2, 3, 24, 40)]
