"""The benchmark peers (benchmarks/peers) as real processes on 127.0.0.1, and the benchmark model builder.

Each peer must serve exactly what our in-process pipeline computes for the same JPEG bytes, or the benchmark
would compare different work.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
import yaml
from helpers import ROOT, child_env
from servers import free_port
from skimage import data

from segcore.engines import EngineOptions, create_engine
from segcore.images import decode_image
from segcore.pipeline import SegmentationPipeline
from segcore.repository import ModelRepository, load_spec

pytestmark = pytest.mark.slow

ASTRONAUT_JPEG = cv2.imencode(".jpg", cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))[1].tobytes()
BODY = {"image": base64.b64encode(ASTRONAUT_JPEG).decode("ascii")}


def _needs(module: str) -> pytest.MarkDecorator:
    missing = importlib.util.find_spec(module) is None
    return pytest.mark.skipif(missing, reason=f"{module} is not installed (pip install '.[bench]')")


_EXPECTED: dict[str, np.ndarray] = {}


def expected_labels(engine: str) -> np.ndarray:
    """The portrait label map of ASTRONAUT_JPEG from SegmentationPipeline in this process."""
    if engine not in _EXPECTED:
        spec = ModelRepository().load("portrait")
        assert spec.config is not None
        pipeline = SegmentationPipeline(
            spec.config, create_engine(spec.server_dir, spec.config, engine, EngineOptions(cpu_threads=1))
        )
        _EXPECTED[engine] = pipeline.segment(decode_image(ASTRONAUT_JPEG)).label_map
    return _EXPECTED[engine]


def png_labels(b64: str) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(base64.b64decode(b64), np.uint8), cv2.IMREAD_UNCHANGED)


@contextlib.contextmanager
def peer(tmp_path: Path, module: str, *args: str, timeout: float = 90.0) -> Iterator[str]:
    """Start `python -m MODULE --port P ARGS`, wait for GET /health == 200, yield the base URL; SIGTERM on exit."""
    port = free_port()
    log_path = tmp_path / f"{module.rsplit('.', 1)[-1]}-{port}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", module, "--port", str(port), *args],
            cwd=ROOT, env=child_env(), stdout=log, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                pytest.fail(f"{module} exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"{module} not healthy after {timeout}s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            rc = process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            rc = process.wait()
    assert rc in (0, -15), f"{module} exited with {rc} on SIGTERM:\n{log_path.read_text()[-3000:]}"


@_needs("flask")
@pytest.mark.parametrize(
    ("engine", "response", "extra"),
    [("onnxruntime", "label_map", []), ("paddle", "label_map", []), ("paddle", "label_png", ["--infer-thread"])],
)
def test_naive_peer_serves_the_pipelines_labels(tmp_path: Path, engine: str, response: str, extra: list[str]) -> None:
    args = ["--model", "portrait", "--engine", engine, "--threads", "1", "--response", response, *extra]
    with peer(tmp_path, "benchmarks.peers.naive", *args) as url:
        answers = [httpx.post(f"{url}/predict", json=BODY, timeout=60) for _ in range(2)]
        bad = httpx.post(f"{url}/predict", json={"image": base64.b64encode(b"not an image").decode()}, timeout=10)
        missing = httpx.post(f"{url}/predict", json={"img": "x"}, timeout=10)
    expected = expected_labels(engine)
    for answer in answers:
        assert answer.status_code == 200, answer.text
        doc = answer.json()
        if response == "label_map":
            assert doc["shape"] == [512, 512]
            assert doc["contain_score_map"] is False and doc["score_map"] == []
            labels = np.asarray(doc["label_map"], np.uint8).reshape(doc["shape"])
        else:
            labels = png_labels(doc["label_png"])
        assert labels.dtype == np.uint8 and labels.shape == expected.shape
        np.testing.assert_array_equal(labels, expected)
    assert 0 < expected.mean() < 1  # a person and a background: the comparison is not trivially all-zero
    assert bad.status_code == 400 and "cannot be decoded" in bad.json()["error"]
    assert missing.status_code == 400


@_needs("litserve")
@pytest.mark.parametrize("engine", ["onnxruntime", "paddle"])
def test_litserve_peer_serves_the_pipelines_labels(tmp_path: Path, engine: str) -> None:
    args = ["--model", "portrait", "--engine", engine, "--workers", "2"]
    with peer(tmp_path, "benchmarks.peers.litserve_app", *args) as url:
        answers = [httpx.post(f"{url}/predict", json=BODY, timeout=60) for _ in range(4)]  # both workers
        bad = httpx.post(f"{url}/predict", json={"img": "x"}, timeout=10)
    for answer in answers:
        assert answer.status_code == 200, answer.text
        np.testing.assert_array_equal(png_labels(answer.json()["label_png"]), expected_labels(engine))
    assert bad.status_code == 400


@pytest.mark.parametrize(
    ("module", "package", "advice"),
    [("benchmarks.peers.litserve_app", "litserve", "litserve is not usable here; pip install litserve==0.2.19"),
     ("benchmarks.peers.ray_serve_app", "ray", "ray[serve] is not usable here; ray[serve]==2.60.0")],
)  # fmt: skip
def test_peer_without_its_package_exits_3(tmp_path: Path, module: str, package: str, advice: str) -> None:
    shadow = tmp_path / "shadow" / package
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(f"raise ImportError('{package} is not installed here')\n")
    env = child_env()
    env["PYTHONPATH"] = f"{shadow.parent}:{env['PYTHONPATH']}"
    proc = subprocess.run(
        [sys.executable, "-m", module, "--port", str(free_port())],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    for part in advice.split("; "):
        assert part in proc.stderr, proc.stderr


@_needs("ray")
def test_ray_serve_peer_serves_the_pipelines_labels(tmp_path: Path) -> None:
    args = ["--model", "portrait", "--engine", "onnxruntime", "--replicas", "2"]
    with peer(tmp_path, "benchmarks.peers.ray_serve_app", *args, timeout=180) as url:
        answers = [httpx.post(f"{url}/predict", json=BODY, timeout=60) for _ in range(4)]
        bad = httpx.post(f"{url}/predict", json={"img": "x"}, timeout=10)
    for answer in answers:
        assert answer.status_code == 200, answer.text
        np.testing.assert_array_equal(png_labels(answer.json()["label_png"]), expected_labels("onnxruntime"))
    assert bad.status_code == 400 and "must be JSON" in bad.json()["error"]


def test_tiny_pp_liteseg_builds_and_converts_with_a_passed_onnx_check(tmp_path: Path) -> None:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.models", "pp_liteseg", "--tiny", "--out", str(tmp_path / "repo")],
        cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert elapsed < 60, f"--tiny took {elapsed:.1f}s"
    summary = json.loads(proc.stdout)  # stdout is the JSON summary alone (Paddle's C++ chatter goes to stderr)
    entry = tmp_path / "repo" / "pp_liteseg_random_tiny"
    assert summary["entry"] == str(entry) and summary["untrained"] is True
    assert 100_000 < summary["parameters"] < 1_000_000

    spec = load_spec(entry)
    assert spec.name == "pp_liteseg_random_tiny" and spec.client_dir is not None
    config = spec.config
    assert config is not None and config.onnx is not None
    assert config.onnx.check.passed and config.onnx.check.label_agreement == 1.0
    assert config.input_shape == [None, 3, 128, 128]
    assert config.postprocess is not None and config.postprocess.output_op == "argmax"
    assert "UNTRAINED" in config.source["weights"]
    assert config.source["parameters"] == str(summary["parameters"])
    deploy_text = (entry / "source" / "deploy.yaml").read_text()
    assert deploy_text.startswith("# UNTRAINED")
    assert yaml.safe_load(deploy_text)["untrained_random_weights"] is True
    assert "UNTRAINED" in (entry / "UNTRAINED.txt").read_text()

    image = decode_image(ASTRONAUT_JPEG)
    labels = {}
    for engine in ("onnxruntime", "paddle"):
        pipeline = SegmentationPipeline(config, create_engine(spec.server_dir, config, engine, EngineOptions()))
        labels[engine] = pipeline.segment(image).label_map
        assert labels[engine].shape == (512, 512) and labels[engine].max() <= 1
    assert (labels["onnxruntime"] == labels["paddle"]).mean() > 0.999
