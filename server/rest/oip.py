"""The Open Inference Protocol's HTTP routes other than `infer` (which server.rest.inference serves): server and
model metadata and readiness in every version path form, Triton's model configuration, statistics and
repository index. Model control (load/unload) is not offered: the served models are fixed at start."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from server.codecs import model_info
from server.codecs.errors import JSON, json_error
from server.dataplane import DataPlane, ModelInfo
from server.errors import InvalidInput, ServingError

TAGS: list[str | Enum] = ["open-inference-protocol"]


def _error(exc: ServingError) -> Response:
    return Response(json_error(exc), exc.status, media_type=JSON)


def router(plane: DataPlane) -> APIRouter:
    routes = APIRouter(tags=TAGS)

    @routes.get("/v2", summary="Server metadata")
    async def server() -> JSONResponse:
        return JSONResponse(model_info.server_metadata())

    # before /v2/models/{name}, which would take "stats" for a model name
    @routes.get("/v2/models/stats", summary="Statistics of every served model")
    @routes.get("/v2/models/{name}/stats", summary="Statistics of one model")
    @routes.get("/v2/models/{name}/versions/{version}/stats", summary="Statistics of one model")
    async def stats(name: str | None = None, version: str | None = None) -> Response:
        try:
            if name is not None:
                model_info.check_version(name, version)
            names = [plane.spec(name).name] if name is not None else list(plane.specs)
        except ServingError as exc:
            return _error(exc)
        await plane.collect()
        return JSONResponse({"model_stats": [plane.metrics.statistics(n) for n in names]})

    def model_document(name: str, version: str | None, build: Callable[[ModelInfo], dict[str, Any]]) -> Response:
        try:
            model_info.check_version(name, version)
            return JSONResponse(build(plane.info(name)))
        except ServingError as exc:
            return _error(exc)

    @routes.get("/v2/models/{name}", summary="Model metadata")
    @routes.get("/v2/models/{name}/versions/{version}", summary="Model metadata")
    async def model(name: str, version: str | None = None) -> Response:
        return model_document(name, version, model_info.kserve_metadata)

    @routes.get("/v2/models/{name}/ready", summary="Model readiness (200 ready, 503 not yet)")
    @routes.get("/v2/models/{name}/versions/{version}/ready", summary="Model readiness (200 ready, 503 not yet)")
    async def model_ready(name: str, version: str | None = None) -> Response:
        try:
            model_info.check_version(name, version)
            is_ready = plane.model_ready(name)
        except ServingError as exc:
            return _error(exc)
        return JSONResponse({"name": name, "ready": is_ready}, 200 if is_ready else 503)

    @routes.get("/v2/models/{name}/config", summary="Triton model configuration")
    @routes.get("/v2/models/{name}/versions/{version}/config", summary="Triton model configuration")
    async def config(name: str, version: str | None = None) -> Response:
        return model_document(name, version, model_info.triton_config)

    @routes.post("/v2/repository/index", summary="Repository index: the served models and their state")
    async def index(body: dict[str, object] | None = None) -> JSONResponse:
        ready_only = bool((body or {}).get("ready", False))
        return JSONResponse(model_info.repository_index(plane.readiness(), ready_only))

    @routes.post("/v2/repository/models/{name}/load", summary="Not offered: models are fixed at start")
    @routes.post("/v2/repository/models/{name}/unload", summary="Not offered: models are fixed at start")
    async def control(name: str) -> Response:
        served = ", ".join(plane.specs)
        return _error(InvalidInput(f"model control is not offered: this server serves the models given with "
                                   f"--model at start ({served}); restart it to change them"))  # fmt: skip

    return routes
