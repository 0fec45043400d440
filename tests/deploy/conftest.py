"""Rendering and validating the deployment manifests: `kubectl kustomize` (or `kustomize build`) for the overlays,
Kubernetes' own schemas (kubernetes-validate, strict) for built-in kinds, KServe's CRD schemas for its kinds."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import kubernetes_validate
import pytest
import yaml
from helpers import ROOT

DEPLOY = ROOT / "deploy"
SCHEMAS = Path(__file__).with_name("schemas")
# The oldest Kubernetes the manifests support (autoscaling/v2, policy/v1 PDBs, seccompProfile) and the newest
# kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")


def _kustomize_command() -> list[str]:
    if kustomize := shutil.which("kustomize"):
        return [kustomize, "build"]
    if kubectl := shutil.which("kubectl"):
        return [kubectl, "kustomize"]
    reason = "neither kubectl nor kustomize is installed"
    if os.environ.get("SEGSERVING_REQUIRE_KUSTOMIZE") == "1":
        pytest.fail(f"SEGSERVING_REQUIRE_KUSTOMIZE=1 but {reason}")
    pytest.skip(reason)
    raise AssertionError  # unreachable


def render(directory: Path) -> list[dict[str, Any]]:
    """The objects `kubectl kustomize DIRECTORY` renders."""
    proc = subprocess.run([*_kustomize_command(), str(directory)], capture_output=True, text=True, timeout=120,
                          check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def validate_builtin(doc: dict[str, Any]) -> None:
    """Kubernetes' own schema for the object's apiVersion and kind, strict (no unknown fields), at every version
    in KUBERNETES_VERSIONS; raises kubernetes_validate.ValidationError naming the field."""
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(doc, version, strict=True)


def _strict(schema: Any) -> Any:
    """A CRD schema as the API server applies it with strict field validation: objects with declared properties
    reject others, unless they preserve unknown fields."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _strict(value) for key, value in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@cache
def crd_validator(name: str) -> jsonschema.Draft7Validator:
    """A strict validator from one of the CRD schemas in schemas/ (README.md there says where they come from)."""
    with gzip.open(SCHEMAS / f"{name}.json.gz") as f:
        schema = _strict(json.load(f))
    return jsonschema.Draft7Validator(schema)


def crd_errors(name: str, doc: dict[str, Any]) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in
            crd_validator(name).iter_errors(doc)]  # fmt: skip


def answers(url: str) -> bool:
    """GET url -> 200 (False while the server is not listening yet)."""
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def entrypoint() -> list[str]:
    """docker/Dockerfile's ENTRYPOINT: the command every pod runs before its args."""
    line = re.search(r"^ENTRYPOINT (.*)$", (ROOT / "docker" / "Dockerfile").read_text(), re.M)
    assert line, "docker/Dockerfile has no ENTRYPOINT"
    return json.loads(line.group(1))


@pytest.fixture(scope="module")
def rendered() -> Iterator[Callable[[str], list[dict[str, Any]]]]:
    """rendered(overlay) -> the objects of deploy/k8s/overlays/OVERLAY, rendered once per module."""
    seen: dict[str, list[dict[str, Any]]] = {}

    def get(overlay: str) -> list[dict[str, Any]]:
        if overlay not in seen:
            seen[overlay] = render(DEPLOY / "k8s" / "overlays" / overlay)
        return seen[overlay]

    yield get
