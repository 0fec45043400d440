"""benchmarks.limit: which limit the server is held to, and each mode's processes doing the work (it checks the
counts, never the speed)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from helpers import ROOT

from benchmarks.limit import LimitSpec, limit_mode, limit_runs, measure, run

PORTRAIT = ROOT / "serving_models" / "portrait" / "serving_server"


def test_the_independent_pipeline_is_the_limit_where_it_can_run_the_model(tmp_path: Path) -> None:
    assert limit_mode(PORTRAIT, "onnxruntime") == "independent"
    assert limit_mode(PORTRAIT, "paddle") == "worker"
    (tmp_path / "deploy.yaml").write_text(yaml.safe_dump({"Deploy": {"transforms": [{"type": "ResizeByLong",
                                                                                     "long_size": 512}]}}))  # fmt: skip
    assert limit_mode(tmp_path, "onnxruntime") == "worker"


def test_the_limit_table_runs_the_held_to_limit_first() -> None:
    assert limit_runs("independent", 2) == [(2, "independent"), (1, "independent"), (2, "worker"), (2, "inference"),
                                            (1, "inference")]  # fmt: skip
    assert limit_runs("worker", 2) == [(2, "worker"), (1, "worker")]


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("limit") / "photo.jpg"
    image = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 256, (120, 160, 3)).astype(np.uint8), (9, 9), 3)
    path.write_bytes(cv2.imencode(".jpg", image)[1].tobytes())
    return path


@pytest.mark.parametrize("mode", ["independent", "worker", "inference"])
def test_each_mode_runs_in_every_process(photo: Path, mode: str) -> None:
    result = run(LimitSpec(str(PORTRAIT), procs=2, duration=0.5, warmup=0.1, payload=str(photo), mode=mode))
    assert result["count"] == len(result["latencies"]) >= 2 and result["throughput"] > 0
    assert result["spec"]["mode"] == mode


def test_measure_runs_a_child_process_and_summarises(photo: Path) -> None:
    row = measure(LimitSpec(str(PORTRAIT), duration=0.3, warmup=0.1, payload=str(photo)))
    assert row["system"] == "in-process limit (independent)" and row["procs"] == 1
    assert row["qps"] > 0 and 0 < row["p50_ms"] <= row["p99_ms"]


def test_an_unknown_mode_is_refused(photo: Path) -> None:
    from benchmarks.limit import _call

    with pytest.raises(ValueError, match="unknown limit mode 'pipeline'"):
        _call(LimitSpec(str(PORTRAIT), payload=str(photo), mode="pipeline"))
