"""HTTP routes other than inference: health, metrics, model information, OpenAPI (and the Open Inference
Protocol's metadata routes from server.rest.oip).
The inference routes (server.rest.inference) sit in front of this app and are described in its OpenAPI."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.telemetry import TelemetryConfig

from idphoto.presets import catalogue as presets_catalogue
from server.codecs import model_info
from server.codecs.errors import JSON, json_error
from server.dataplane import DataPlane
from server.errors import ServingError
from server.rest import oip
from server.rest.openapi import PATHS, add_docs


def _error(exc: ServingError) -> Response:
    return Response(json_error(exc), exc.status, media_type=JSON)


def create_app(plane: DataPlane) -> FastAPI:
    """The ASGI app over `plane`."""
    # FastAPI's built-in OpenTelemetry hooks cost CPU on every request; SegServing exports Prometheus metrics.
    off: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    app = FastAPI(title="SegServing", version="0.1.0", description=__doc__, telemetry=off, docs_url=None,
                  redoc_url=None)  # fmt: skip
    add_docs(app)

    @app.get("/v2/health/live", tags=["open-inference-protocol", "health"])
    @app.get("/health/live", tags=["health"])
    async def live() -> JSONResponse:
        return JSONResponse({"live": plane.live}, 200 if plane.live else 503)

    @app.get("/v2/health/ready", tags=["open-inference-protocol", "health"])
    @app.get("/health/ready", tags=["health"])
    async def ready() -> JSONResponse:
        models = plane.readiness()
        return JSONResponse({"ready": plane.ready, "draining": plane.draining, "models": models},
                            200 if plane.ready else 503)  # fmt: skip

    @app.get("/v1/models", tags=["models"])
    async def models() -> dict[str, Any]:
        return {"default": plane.default_model, "models": [model_info.describe(plane.info(n)) for n in plane.specs]}

    @app.get("/v1/models/{name}", tags=["models"])
    async def model(name: str) -> Response:
        try:
            return JSONResponse(model_info.describe(plane.info(name)))
        except ServingError as exc:
            return _error(exc)

    app.include_router(oip.router(plane))

    @app.get("/v1/id-photo/presets", tags=["id-photo"])
    async def id_photo_presets() -> dict[str, Any]:
        """Photo sizes (with each document's head, margin and eye rules in mm), backgrounds and print sheets."""
        return presets_catalogue()

    @app.get("/metrics", tags=["health"])
    async def metrics() -> Response:
        await plane.collect()
        return Response(plane.metrics.exposition(), media_type=plane.metrics.content_type)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schema["paths"] = {**PATHS, **schema["paths"]}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
