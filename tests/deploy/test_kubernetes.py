"""deploy/k8s: both overlays render with kustomize and pass Kubernetes' schemas strictly; the pods are shaped for
production (probes, drain, security, resources, autoscaling); and the pod's own command, flags file and probes
work against a real server on this machine."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml
from conftest import DEPLOY, answers, entrypoint, render, validate_builtin
from helpers import ROOT, TOOLS_PYTHON, child_env
from servers import free_port

from server.flagfile import read_flags

Rendered = Callable[[str], list[dict[str, Any]]]
OVERLAYS = ("cpu", "gpu")


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind]
    return doc


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (box,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return box


def flags(docs: list[dict[str, Any]], tmp_path: Path) -> list[str]:
    """The ConfigMap's server.flags, parsed as the server parses it."""
    path = tmp_path / "server.flags"
    path.write_text(one(docs, "ConfigMap")["data"]["server.flags"])
    return read_flags(path)


def flag(values: list[str], name: str) -> str:
    return values[len(values) - 1 - values[::-1].index(name) + 1]  # the last one wins


def image_user(dockerfile: str) -> int:
    return int(re.search(r"useradd .*--uid (\d+)", (ROOT / "docker" / dockerfile).read_text()).group(1))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_validates_strictly(rendered: Rendered, overlay: str) -> None:
    docs = rendered(overlay)
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Secret", "Service"]
    for doc in docs:
        validate_builtin(doc)


def test_the_validation_is_strict(rendered: Rendered) -> None:
    deployment = json.loads(json.dumps(one(rendered("cpu"), "Deployment")))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}  # a typo: lowercase p
    with pytest.raises(kubernetes_validate.ValidationError, match="readinessprobe"):
        validate_builtin(deployment)


def test_models_volume_component_mounts_a_claim_over_the_image_models(tmp_path: Path) -> None:
    overlay = tmp_path / "with-volume"
    overlay.mkdir()
    up = Path("..", *[".."] * (len(overlay.resolve().parts) - 2))  # relative: kustomize refuses absolute bases
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": [str(up / DEPLOY.relative_to("/") / "k8s" / "overlays" / "cpu")],
        "components": [str(up / DEPLOY.relative_to("/") / "k8s" / "components" / "models-volume")],
    }))  # fmt: skip
    docs = render(overlay)
    for doc in docs:
        validate_builtin(doc)
    claim = one(docs, "PersistentVolumeClaim")["metadata"]["name"]
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert volume["persistentVolumeClaim"] == {"claimName": claim, "readOnly": True}
    mount = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}[volume["name"]]
    command = entrypoint()
    assert mount["mountPath"] == command[command.index("--repository") + 1] and mount["readOnly"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_are_shaped_for_production(rendered: Rendered, overlay: str, tmp_path: Path) -> None:
    docs = rendered(overlay)
    deployment, box = one(docs, "Deployment"), container(docs)
    pod = deployment["spec"]["template"]["spec"]
    values = flags(docs, tmp_path)
    # one port, named, matching the server's --port; the Service and the probes use it by name
    (port,) = box["ports"]
    assert port["containerPort"] == int(flag(values, "--port"))
    (service_port,) = one(docs, "Service")["spec"]["ports"]
    assert service_port["targetPort"] == port["name"]
    probes = {kind: box[kind]["httpGet"] for kind in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert {p["port"] for p in probes.values()} == {port["name"]}
    assert [probes[k]["path"] for k in probes] == ["/health/ready", "/health/ready", "/health/live"]
    startup = box["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120  # model loading
    # SIGTERM drains: grace >= preStop sleep + the server's drain + margin
    (sleep,) = [int(w) for w in box["lifecycle"]["preStop"]["exec"]["command"] if w.isdigit()]
    drain_s = float(flag(values, "--drain_timeout_ms")) / 1000
    assert pod["terminationGracePeriodSeconds"] >= sleep + drain_s + 3
    # non-root as the image's own user, read-only root, nothing to escalate; writable /tmp for --workdir
    uid = image_user("Dockerfile.gpu" if overlay == "gpu" else "Dockerfile")
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == uid
    security = box["securityContext"]
    assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
    assert security["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"] for m in box["volumeMounts"]}
    assert flag(box["args"], "--workdir").startswith("/tmp/") and "/tmp" in mounts
    (flag_file,) = [a[1:] for a in box["args"] if a.startswith("@")]
    assert str(Path(flag_file).parent) in mounts
    # requests and limits on every resource; the worker count fits the CPU limit
    resources = box["resources"]
    assert set(resources["requests"]) >= {"cpu", "memory"} and set(resources["limits"]) >= {"cpu", "memory"}
    # labels tie it together: the Service, the PDB and the HPA all find these pods
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert one(docs, "Service")["spec"]["selector"].items() <= labels.items()
    assert one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    hpa = one(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    metrics = {m["type"]: m for m in hpa["spec"]["metrics"]}
    assert metrics["Pods"]["pods"]["metric"]["name"] == "segserving_queue_depth"
    # the API keys come from the Secret
    (env,) = box["env"]
    assert env["valueFrom"]["secretKeyRef"]["name"] == one(docs, "Secret")["metadata"]["name"]
    if overlay == "cpu":
        assert box["image"] == "segserving:latest"
        assert metrics["Resource"]["resource"]["name"] == "cpu"
        assert int(flag(values, "--thread")) == int(resources["limits"]["cpu"])
    else:
        assert box["image"] == "segserving:gpu" and "Resource" not in metrics
        assert resources["limits"]["nvidia.com/gpu"] == 1 and flag(values, "--gpu_ids") == "0"
        assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])


def test_the_pod_command_serves_here_and_drains_on_sigterm(rendered: Rendered, tmp_path: Path) -> None:
    """The image's ENTRYPOINT + the pod's args + the ConfigMap's flags file, as a process on this machine (paths
    moved under tmp_path, the port and host overridden after them): every probe answers 200, the metrics the
    annotations point to carry the HPA's metric, and SIGTERM exits 0 within the grace period."""
    docs = rendered("cpu")
    box, deployment = container(docs), one(docs, "Deployment")
    flags(docs, tmp_path)  # writes tmp_path/server.flags
    moved = {"python": TOOLS_PYTHON, "/models": str(ROOT / "serving_models")}
    args = [f"@{tmp_path}/{Path(a).name}" if a.startswith("@") else str(tmp_path / a[5:]) if a.startswith("/tmp/")
            else a for a in box["args"]]  # fmt: skip
    port = free_port()
    command = [moved.get(a, a) for a in entrypoint()] + args + ["--port", str(port), "--host", "127.0.0.1"]
    log = tmp_path / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=child_env())
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while not answers(f"{url}{box['startupProbe']['httpGet']['path']}"):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert httpx.get(url + box[probe]["httpGet"]["path"], timeout=5).status_code == 200
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert int(annotations["prometheus.io/port"]) == box["ports"][0]["containerPort"]
        metrics = httpx.get(url + annotations["prometheus.io/path"], timeout=5).text
        adapter = yaml.safe_load((DEPLOY / "k8s" / "prometheus-adapter.yaml").read_text())
        (rule,) = adapter["rules"]["custom"]
        series = rule["seriesQuery"].split("{")[0]
        assert rule["name"]["as"] == "segserving_queue_depth"
        assert re.search(rf"^{series}\{{model=\"portrait\"\}} 0\.0$", metrics, re.M), metrics[:2000]
        assert (tmp_path / "segserving_9393").exists() is False  # --workdir under /tmp, with the overriding port
        assert (tmp_path / f"segserving_{port}" / "server.pid").is_file()
        process.send_signal(signal.SIGTERM)
        sleep = int(box["lifecycle"]["preStop"]["exec"]["command"][-1])
        assert process.wait(deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] - sleep) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
