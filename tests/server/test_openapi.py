"""The OpenAPI document (typed options, bodies, every route) and the /docs page, which must work offline."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from servers import ServerProcess, start_server

from idphoto.pipeline import CROPS
from idphoto.presets import SHEETS, SIZE_PRESETS
from server.rest import openapi
from server.workers import idphoto_job, image_job


@pytest.fixture(scope="module")
def server(module_tmp: Path) -> Iterator[ServerProcess]:
    with start_server(module_tmp, "--thread", "1") as srv:
        yield srv


def test_option_values_match_the_parsers() -> None:
    assert list(image_job.OUTPUTS) == openapi.SEGMENT_OUTPUTS
    assert list(idphoto_job.OUTPUTS) == openapi.ID_PHOTO_OUTPUTS
    assert [*SIZE_PRESETS, "custom"] == openapi.ID_PHOTO_SIZES
    assert ["none", *SHEETS] == openapi.ID_PHOTO_SHEETS
    assert list(CROPS) == openapi.ID_PHOTO_CROPS


def test_the_document_types_options_and_bodies(server: ServerProcess) -> None:
    doc = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    paths = doc["paths"]
    for path in ("/v2/models/{name}/config", "/v2/models/{name}/stats", "/v2/models/stats", "/v2/repository/index",
                 "/v2/models/{name}/infer", "/v1/id-photo", "/v1/models/{name}/segment"):  # fmt: skip
        assert path in paths, path
    segment = paths["/v1/models/{name}/segment"]["post"]
    params = {p["name"]: p["schema"] for p in segment["parameters"]}
    assert params["output"]["enum"] == openapi.SEGMENT_OUTPUTS and params["quality"]["type"] == "integer"
    assert params["alpha"] == {"type": "number", "minimum": 0, "maximum": 1, "default": 0.5}
    assert "multipart/form-data" in segment["requestBody"]["content"]
    assert {"image/png", "application/json"} <= set(segment["responses"]["200"]["content"])
    assert segment["responses"]["413"]["content"]["application/json"]["schema"]["properties"]["code"]
    infer = paths["/v2/models/{name}/infer"]["post"]
    inputs = infer["requestBody"]["content"]["application/json"]["schema"]["properties"]["inputs"]
    assert "BYTES" in inputs["items"]["properties"]["datatype"]["enum"]


def test_docs_page_needs_no_other_host(server: ServerProcess) -> None:
    page = httpx.get(f"{server.url}/docs", timeout=30)
    assert page.status_code == 200 and "swagger-ui" in page.text
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: *["']([^"']+)["']""", page.text)
    refs = [a or b for a, b in urls]
    assert refs and not [r for r in refs if "://" in r], refs
    for ref in refs:
        asset = httpx.get(f"{server.url}{ref}", timeout=30)
        assert asset.status_code == 200, ref
        assert len(asset.content) > 100
