"""HTTP routes: Paddle Serving's GeneralModelService, the image API, KServe v2, health and metrics.
Each route only reads the request, calls the DataPlane and writes its Result."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from server.codecs import paddle_tensor
from server.dataplane import DataPlane
from server.errors import ServingError
from server.jobs import JobKind, Result
from server.rest.body import read_body, too_large

PROTO = "application/proto"
RAW_IMAGE_TYPES = ("image/", "application/octet-stream")
_RAW_BODY = {
    "requestBody": {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
}


def _headers(result: Result) -> dict[str, str]:
    headers = dict(result.headers)
    if result.timings:
        headers["Server-Timing"] = ", ".join(f"{k};dur={v * 1000:.3f}" for k, v in result.timings.items())
    return headers


def _respond(result: Result) -> Response:
    return Response(result.body, status_code=result.status, media_type=result.content_type, headers=_headers(result))


def _error(exc: ServingError, kind: JobKind | None) -> Response:
    headers = {"Retry-After": str(max(1, round(exc.retry_after)))} if exc.retry_after is not None else {}
    if kind is JobKind.PADDLE_PROTO:
        return Response(paddle_tensor.error_proto(exc), exc.status, media_type=PROTO, headers=headers)
    if kind is JobKind.PADDLE_JSON:
        return Response(paddle_tensor.error_json(exc), exc.status, media_type="application/json", headers=headers)
    return JSONResponse({"error": exc.message}, exc.status, headers=headers)


def _encoding_params(request: Request) -> dict[str, str]:
    params = {}
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding == "gzip":
        params["_gzip_request"] = "1"
    elif encoding not in ("", "identity"):
        raise ServingError(415, f"Content-Encoding {encoding!r} is not supported (use gzip or none)")
    if "gzip" in request.headers.get("accept-encoding", "").lower():
        params["_gzip_response"] = "1"
    return params


def create_app(plane: DataPlane) -> FastAPI:
    """The ASGI app over `plane`."""
    app = FastAPI(title="SegServing", version="0.1.0", description=__doc__)
    limit = plane.settings.max_body_size

    async def run(request: Request, model: str | None, kind: JobKind, params: dict[str, str], protocol: str,
                  body: bytes | None = None) -> Response:  # fmt: skip
        try:
            params.update(_encoding_params(request))
            payload = body if body is not None else await read_body(request, limit)
            return _respond(await plane.infer(model, kind, payload, params, protocol))
        except ServingError as exc:
            return _error(exc, kind)

    @app.post("/GeneralModelService/inference", tags=["paddle-serving"], openapi_extra=_RAW_BODY)
    @app.post("/GeneralModelService/debug", tags=["paddle-serving"], openapi_extra=_RAW_BODY)
    async def general_model_service(request: Request, model: str | None = None) -> Response:
        """Paddle Serving's GeneralModelService: a Request as JSON, or as protobuf with Content-Type
        application/proto; gzip bodies accepted and returned. `model` picks a model (default: the first)."""
        proto = request.headers.get("content-type", "").split(";")[0].strip().lower() == PROTO
        kind = JobKind.PADDLE_PROTO if proto else JobKind.PADDLE_JSON
        return await run(request, model, kind, {}, "http-proto" if proto else "http-json")

    async def image_body(request: Request, params: dict[str, str]) -> bytes | None:
        """Multipart: the file part (other fields join params). Raw: None (read later). Else 415."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "multipart/form-data":
            return await _form_image(request, limit, params)
        if content_type and not content_type.startswith(RAW_IMAGE_TYPES):
            raise ServingError(415, f"Content-Type {content_type!r} is not an image: send the image bytes "
                                    "(image/jpeg, image/png, image/webp, image/bmp, application/octet-stream) "
                                    "or multipart/form-data")  # fmt: skip
        return None

    @app.post("/v1/models/{name}/segment", tags=["image"], openapi_extra=_RAW_BODY)
    async def segment(request: Request, name: str) -> Response:
        """Segment an image (raw JPEG/PNG/WebP/BMP body, or multipart/form-data with one file). Query options:
        output=label|probability|alpha|overlay|json|proto, class_id, format=png|jpeg, alpha, quality, probability."""
        params = dict(request.query_params)
        try:
            body = await image_body(request, params)
        except ServingError as exc:
            return _error(exc, JobKind.IMAGE)
        return await run(request, name, JobKind.IMAGE, params, "image", body)

    @app.post("/v1/id-photo", tags=["id-photo"], openapi_extra=_RAW_BODY)
    async def id_photo(request: Request) -> Response:
        """Make an ID photo from a portrait (raw image body or multipart). Query options: background
        (white|blue|red|#RRGGBB|r,g,b|transparent), size (original|1inch|1inch-large|2inch-small|2inch|custom with
        width, height), crop=face|none, format=jpeg|png, max_kb, sheet=4R|5inch, refine, output=photo|sheet|json,
        model (default: the server's first model)."""
        params = dict(request.query_params)
        try:
            body = await image_body(request, params)
        except ServingError as exc:
            return _error(exc, JobKind.ID_PHOTO)
        model = params.pop("model", None)
        return await run(request, model, JobKind.ID_PHOTO, params, "id-photo", body)

    @app.post("/v2/models/{name}/infer", tags=["kserve-v2"])
    @app.post("/v2/models/{name}/versions/{version}/infer", tags=["kserve-v2"])
    async def v2_infer(request: Request, name: str, version: str | None = None) -> Response:
        """KServe v2 inference (JSON tensors)."""
        return await run(request, name, JobKind.KSERVE_V2, {}, "kserve-v2")

    @app.get("/v2", tags=["kserve-v2"])
    async def v2_server() -> dict[str, Any]:
        return {"name": "segserving", "version": app.version, "extensions": []}

    @app.get("/v2/health/live", tags=["kserve-v2", "health"])
    @app.get("/health/live", tags=["health"])
    async def live() -> JSONResponse:
        return JSONResponse({"live": plane.live}, 200 if plane.live else 503)

    @app.get("/v2/health/ready", tags=["kserve-v2", "health"])
    @app.get("/health/ready", tags=["health"])
    async def ready() -> JSONResponse:
        models = {name: pool.ready for name, pool in plane.pools.items()}
        return JSONResponse({"ready": plane.ready, "draining": plane.draining, "models": models},
                            200 if plane.ready else 503)  # fmt: skip

    @app.get("/v2/models/{name}", tags=["kserve-v2"])
    @app.get("/v2/models/{name}/versions/{version}", tags=["kserve-v2"])
    async def v2_model(name: str, version: str | None = None) -> JSONResponse:
        try:
            info = plane.describe(name)
        except ServingError as exc:
            return _error(exc, None)
        return JSONResponse({k: info[k] for k in ("name", "versions", "platform", "inputs", "outputs")})

    @app.get("/v2/models/{name}/ready", tags=["kserve-v2"])
    @app.get("/v2/models/{name}/versions/{version}/ready", tags=["kserve-v2"])
    async def v2_model_ready(name: str, version: str | None = None) -> JSONResponse:
        try:
            plane.spec(name)
        except ServingError as exc:
            return _error(exc, None)
        is_ready = plane.pools[name].ready and not plane.draining
        return JSONResponse({"name": name, "ready": is_ready}, 200 if is_ready else 503)

    @app.get("/v1/models", tags=["models"])
    async def models() -> dict[str, Any]:
        return {"default": plane.default_model, "models": [plane.describe(n) for n in plane.specs]}

    @app.get("/v1/models/{name}", tags=["models"])
    async def model(name: str) -> JSONResponse:
        try:
            return JSONResponse(plane.describe(name))
        except ServingError as exc:
            return _error(exc, None)

    @app.get("/metrics", tags=["health"])
    async def metrics() -> Response:
        return Response(plane.metrics.exposition(), media_type=plane.metrics.content_type)

    return app


async def _form_image(request: Request, limit: int, params: dict[str, str]) -> bytes:
    """The one file of a multipart form (field 'image' preferred); other fields become options."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    try:
        form = await request.form(max_files=4, max_fields=32, max_part_size=limit)
    except Exception as exc:  # starlette raises MultiPartException / HTTPException for malformed forms
        raise ServingError(400, f"malformed multipart/form-data body: {exc}") from None
    files = [(k, v) for k, v in form.multi_items() if not isinstance(v, str)]
    for key, value in form.multi_items():
        if isinstance(value, str):
            params[key] = value
    if not files:
        raise ServingError(400, "multipart/form-data body has no file part (send the image as field 'image')")
    _, upload = next(((k, v) for k, v in files if k == "image"), files[0])
    data = await upload.read()
    if len(data) > limit:
        raise too_large(limit)
    return data
