"""deploy/kserve: the ServingRuntime and InferenceServices pass KServe's published CRD schemas strictly and agree
with each other; the runtime's container args, with KServe's substitutions made, serve the model under the
InferenceService's name over v2 REST and gRPC on the one declared port."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from conftest import DEPLOY, answers, crd_errors, load, validate_builtin
from helpers import ROOT, TOOLS_PYTHON, child_env
from servers import free_port

from segcore.proto import oip

KSERVE = DEPLOY / "kserve"
RUNTIME = "kserve-servingruntime-v1alpha1"
ISVC = "kserve-inferenceservice-v1beta1"


def runtime() -> dict[str, Any]:
    (doc,) = load(KSERVE / "servingruntime.yaml")
    return doc


def services() -> list[dict[str, Any]]:
    return [doc for path in sorted(KSERVE.glob("inferenceservice*.yaml")) for doc in load(path)]


def test_servingruntime_passes_the_crd_schema_strictly() -> None:
    doc = runtime()
    assert (doc["apiVersion"], doc["kind"]) == ("serving.kserve.io/v1alpha1", "ServingRuntime")
    assert crd_errors(RUNTIME, doc) == []
    (box,) = doc["spec"]["containers"]
    assert box["name"] == "kserve-container"
    # the container is a Kubernetes Container: check it against Kubernetes' own schema too, inside a Pod
    validate_builtin({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
                      "spec": {"containers": [box], "volumes": doc["spec"]["volumes"]}})  # fmt: skip


def test_inferenceservices_pass_the_crd_schema_and_use_the_runtime() -> None:
    spec = runtime()["spec"]
    formats = {f["name"] for f in spec["supportedModelFormats"]}
    isvcs = services()
    assert {d["metadata"]["name"] for d in isvcs} == {"portrait", "portrait-grpc"}
    for doc in isvcs:
        assert (doc["apiVersion"], doc["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
        assert crd_errors(ISVC, doc) == []
        model = doc["spec"]["predictor"]["model"]
        assert model["runtime"] == runtime()["metadata"]["name"] and model["modelFormat"]["name"] in formats
        assert model["protocolVersion"] in spec["protocolVersions"]
        # an InferenceService that names its own port keeps the runtime's port number: the server listens there
        for port in model.get("ports", []):
            assert port["containerPort"] == spec["containers"][0]["ports"][0]["containerPort"]


def test_the_crd_validation_is_strict() -> None:
    doc = runtime()
    doc["spec"]["protocolVersion"] = ["v2"]  # a typo: protocolVersions
    doc["spec"]["containers"][0]["ports"][0]["containerPort"] = "8080"  # a string
    errors = crd_errors(RUNTIME, doc)
    assert any("protocolVersion" in e and "Additional properties" in e for e in errors), errors
    assert any("containerPort" in e and "is not of type 'integer'" in e for e in errors), errors


@pytest.mark.parametrize("isvc", ["portrait", "portrait-grpc"])
def test_runtime_args_serve_the_model_under_the_inferenceservice_name(tmp_path: Path, isvc: str) -> None:
    """KServe's substitutions made ({{.Name}}, /mnt/models from the storage initializer), /tmp moved under
    tmp_path and the port remapped: the readiness probe, v2 REST inference and v2 gRPC all answer for NAME."""
    spec = runtime()["spec"]
    (box,) = spec["containers"]
    mnt = tmp_path / "mnt" / "models"
    shutil.copytree(ROOT / "serving_models" / "portrait", mnt)  # what the storage initializer leaves there
    declared = box["ports"][0]["containerPort"]
    port = free_port()

    def move(arg: str) -> str:
        arg = arg.replace("{{.Name}}", isvc).replace("/mnt/models", str(mnt))
        return str(tmp_path / arg[5:]) if arg.startswith("/tmp/") else str(port) if arg == str(declared) else arg

    command = [TOOLS_PYTHON, "-m", "server.start", *map(move, box["args"]), "--host", "127.0.0.1"]
    assert str(port) in command, "the runtime sets --port to the declared containerPort"
    log = tmp_path / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=child_env())
    try:
        url = f"http://127.0.0.1:{port}"
        ready = url + box["readinessProbe"]["httpGet"]["path"]
        deadline = time.monotonic() + 120
        while not answers(ready):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        image = np.random.default_rng(3).random((1, 3, 256, 256), dtype=np.float32)
        body = {"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 3, 256, 256],
                            "data": image.ravel().tolist()}]}  # fmt: skip
        answer = httpx.post(f"{url}/v2/models/{isvc}/infer", json=body, timeout=60)
        assert answer.status_code == 200, answer.text
        (output,) = answer.json()["outputs"]
        assert output["shape"] == [1, 1, 256, 256] and len(output["data"]) == 256 * 256
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary(f"/{oip.SERVICE}/ModelReady",
                                       response_deserializer=oip.ModelReadyResponse.FromString)  # fmt: skip
            assert call(oip.ModelReadyRequest(name=isvc).SerializeToString(), timeout=10).ready
        assert int(spec["annotations"]["prometheus.kserve.io/port"]) == declared
        metrics = httpx.get(f"{url}{spec['annotations']['prometheus.kserve.io/path']}", timeout=5)
        assert metrics.status_code == 200 and f'segserving_queue_depth{{model="{isvc}"}}' in metrics.text
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
