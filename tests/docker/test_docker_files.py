"""The container files agree with the project: pinned versions, the server's flags, the health route."""

from __future__ import annotations

import re

import yaml
from helpers import ROOT

DOCKER = ROOT / "docker"


def pinned(name: str) -> str:
    match = re.search(rf'"{name}==([^"]+)"', (ROOT / "pyproject.toml").read_text())
    assert match, name
    return match.group(1)


def test_gpu_image_is_cuda_runtime_with_the_pinned_onnxruntime_on_gpu_0() -> None:
    text = (DOCKER / "Dockerfile.gpu").read_text()
    assert re.search(r"^FROM nvidia/cuda:[\w.-]*-runtime-", text, flags=re.M)
    assert f'"onnxruntime-gpu=={pinned("onnxruntime")}"' in text
    cmd = re.search(r"^CMD (\[.*\])$", text, flags=re.M)
    assert cmd and yaml.safe_load(cmd.group(1))[-2:] == ["--gpu_ids", "0"]
    assert not re.search(r"pip install[^\n]*paddle", text)


def test_images_run_the_server_as_a_user_with_a_health_check() -> None:
    for name in ("Dockerfile", "Dockerfile.gpu"):
        text = (DOCKER / name).read_text()
        assert re.search(r"^USER (?!root)\w+", text, flags=re.M), name
        assert re.search(r"^HEALTHCHECK .*\n?.*/health/ready", text, flags=re.M), name
        assert '"-m", "server.start"' in text, name


def test_compose_mounts_the_repository_and_checks_health() -> None:
    services = yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]
    service = services["segserving"]
    assert service["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
    assert "../serving_models:/models:ro" in service["volumes"]
    assert any("/health/ready" in part for part in service["healthcheck"]["test"])
    assert service["command"][:2] == ["--model", "portrait"]
    assert (ROOT / "serving_models" / "portrait" / "serving_server").is_dir()
    # replicas reached only through the proxy, which waits for them to be healthy
    assert "ports" not in service and service["expose"] == ["9393"]
    assert service["deploy"]["mode"] == "replicated" and service["deploy"]["replicas"] == "${SEGSERVING_REPLICAS:-2}"
    proxy = services["proxy"]
    assert proxy["image"].startswith("${SEGSERVING_PROXY_IMAGE:-nginx:")
    assert proxy["volumes"] == ["./nginx.conf:/etc/nginx/conf.d/default.conf:ro"]
    assert proxy["depends_on"] == {"segserving": {"condition": "service_healthy"}}
    published = {p.rsplit(":", 1)[1] for p in proxy["ports"]}
    conf = (DOCKER / "nginx.conf").read_text()
    assert published == set(re.findall(r"^\s*listen (\d+)", conf, flags=re.M)) == {"9393", "9394"}
    command = service["command"]
    assert set(re.findall(r"server segserving:(\d+)", conf)) == {command[command.index("--port") + 1]}
