"""The OpenAPI description of the inference routes (server.rest.inference serves them outside FastAPI's routing,
so they are described here by hand: typed query options, request and response bodies), and the interactive docs
page served from the swagger-ui-bundle package, so it works without reaching any other host."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from idphoto.sizes import SIZE_PRESETS

DOCS_ASSETS = "/docs/assets"
# option values, kept in step with the workers' and idphoto's parsers by tests/server/test_openapi.py
SEGMENT_OUTPUTS = ["label", "probability", "alpha", "overlay", "json", "proto"]
ID_PHOTO_SIZES = [*SIZE_PRESETS, "custom"]
ID_PHOTO_SHEETS = ["none", "4R", "5inch", "A4"]
ID_PHOTO_CROPS = ["face", "none"]
ID_PHOTO_OUTPUTS = ["photo", "sheet", "json"]
DATATYPES = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32",
             "FP64", "BYTES"]  # fmt: skip


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _enum(values: list[str], default: str) -> dict[str, Any]:
    return {"type": "string", "enum": values, "default": default}


_BINARY = {"schema": {"type": "string", "format": "binary"}}
_ERROR = {"description": "error: {\"error\": message, \"code\": stable code}",
          "content": {"application/json": {"schema": {"type": "object", "properties": {
              "error": {"type": "string"}, "code": {"type": "string"}}}}}}  # fmt: skip
_ERRORS = {str(s): _ERROR for s in (400, 401, 404, 413, 415, 422, 429, 500, 503, 504)}
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_VERSION = {"name": "version", "in": "path", "required": True, "schema": {"type": "string", "enum": ["1"]}}
_MODEL = _query("model", {"type": "string"}, "the model (default: the first served)")
_IMAGE_BODY = {"required": True, "content": {
    "application/octet-stream": _BINARY, "image/jpeg": _BINARY, "image/png": _BINARY, "image/webp": _BINARY,
    "multipart/form-data": {"schema": {"type": "object", "properties": {"image": {"type": "string",
                                                                                  "format": "binary"}}}}}}  # fmt: skip

_SEGMENT = {
    "tags": ["image"],
    "summary": "Segment an image",
    "description": "A raw JPEG/PNG/WebP/BMP body, or multipart/form-data with one file (field `image`).",
    "parameters": [
        _NAME,
        _query("output", _enum(SEGMENT_OUTPUTS, "label"), "label: single-channel PNG of class ids; probability, "
               "alpha: 8-bit PNG of class_id's probability; overlay: the photo with the mask; json: label map as "
               "base64 PNG with class names and timings; proto: SegmentResponse"),
        _query("class_id", {"type": "integer", "minimum": 0}, "class for probability/alpha (default 1 of 2)"),
        _query("format", _enum(["png", "jpeg"], "png"), "overlay encoding"),
        _query("alpha", {"type": "number", "minimum": 0, "maximum": 1, "default": 0.5}, "overlay opacity"),
        _query("quality", {"type": "integer", "minimum": 1, "maximum": 100, "default": 90}, "JPEG quality"),
        _query("probability", {"type": "boolean", "default": False}, "json/proto: add the probability PNG"),
    ],
    "requestBody": _IMAGE_BODY,
    "responses": {"200": {"description": "the segmentation in the requested encoding", "content": {
        "image/png": _BINARY, "image/jpeg": _BINARY, "application/x-protobuf": _BINARY,
        "application/json": {"schema": {"type": "object", "properties": {
            "model": {"type": "string"}, "width": {"type": "integer"}, "height": {"type": "integer"},
            "label_map": {"type": "string", "format": "byte"}, "probability": {"type": "string", "format": "byte"},
            "class_names": {"type": "array", "items": {"type": "string"}},
            "timings_ms": {"type": "object", "additionalProperties": {"type": "number"}}}}}}}, **_ERRORS},
}  # fmt: skip
_ID_PHOTO = {
    "tags": ["id-photo"],
    "summary": "Make an ID photo",
    "description": "A portrait as a raw image body or multipart/form-data.",
    "parameters": [
        _MODEL,
        _query("background", {"type": "string"},
               "white, blue, red, light-grey, cream, transparent, #RRGGBB or r,g,b (default: the size's own, "
               "else white)"),
        _query("size", _enum(ID_PHOTO_SIZES, "1inch"), "a size preset (GET /v1/id-photo/presets lists each "
               "document's rules) or custom: give width and height, or width_mm and height_mm"),
        _query("width", {"type": "integer", "minimum": 1}, "custom width in pixels"),
        _query("height", {"type": "integer", "minimum": 1}, "custom height in pixels"),
        _query("width_mm", {"type": "number", "minimum": 5, "maximum": 500}, "custom width in mm (with height_mm)"),
        _query("height_mm", {"type": "number", "minimum": 5, "maximum": 500}, "custom height in mm"),
        _query("dpi", {"type": "integer", "minimum": 72, "maximum": 1200, "default": 300}, "custom size's DPI"),
        _query("crop", _enum(ID_PHOTO_CROPS, "face"), "face: head placed by ID rules; none: the whole picture"),
        _query("face", _enum(["single", "largest"], "single"), "several faces: refuse (422) or use the largest"),
        _query("format", _enum(["jpeg", "png"], "jpeg"), "photo encoding (png for a transparent background)"),
        _query("max_kb", {"type": "integer", "minimum": 1}, "largest photo file in KiB"),
        _query("min_kb", {"type": "integer", "minimum": 1}, "smallest photo file in KiB (upload portals)"),
        _query("sheet", _enum(ID_PHOTO_SHEETS, "none"), "a print sheet of copies"),
        _query("refine", {"type": "boolean", "default": True}, "refine the matte's edges and remove the old "
               "background's colour from them"),
        _query("white_balance", {"type": "boolean", "default": False}, "correct the person's colour cast"),
        _query("brightness", {"type": "boolean", "default": False}, "correct the person's exposure from the face"),
        _query("output", _enum(ID_PHOTO_OUTPUTS, "photo"), "the photo, the sheet, or JSON with both"),
    ],
    "requestBody": _IMAGE_BODY,
    "responses": {"200": {"description": "the photo, sheet or JSON",
                          "content": {"image/jpeg": _BINARY, "image/png": _BINARY,
                                      "application/json": {"schema": {"type": "object"}}}}, **_ERRORS},
}  # fmt: skip
_PADDLE = {
    "tags": ["paddle-serving"],
    "summary": "Paddle Serving GeneralModelService",
    "description": "A Request as JSON, or protobuf with Content-Type application/proto; gzip bodies accepted and "
    "returned with Accept-Encoding: gzip.",
    "parameters": [_MODEL],
    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}},
                                                  "application/proto": _BINARY}},
    "responses": {"200": {"description": "a Response", "content": {"application/json": {"schema": {"type": "object"}},
                                                                   "application/proto": _BINARY}}, **_ERRORS},
}  # fmt: skip
_TENSOR = {"type": "object", "required": ["name", "datatype", "shape"], "properties": {
    "name": {"type": "string"}, "datatype": {"type": "string", "enum": DATATYPES},
    "shape": {"type": "array", "items": {"type": "integer", "minimum": 1}},
    "data": {"type": "array", "items": {}}, "parameters": {"type": "object"}}}  # fmt: skip
_V2 = {
    "tags": ["open-inference-protocol"],
    "summary": "Inference (Open Inference Protocol)",
    "description": "JSON tensors, or with the binary tensor data extension a JSON header of "
    "`Inference-Header-Content-Length` bytes followed by the tensors' bytes (`binary_data_size` per input, "
    "`binary_data` per output). One BYTES input of encoded images returns `label_map` and `probability`.",
    "requestBody": {"required": True, "content": {
        "application/json": {"schema": {"type": "object", "required": ["inputs"], "properties": {
            "id": {"type": "string"}, "inputs": {"type": "array", "items": _TENSOR},
            "outputs": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "parameters": {"type": "object"}}}},
            "parameters": {"type": "object"}}}},
        "application/octet-stream": _BINARY}},
    "responses": {"200": {"description": "the outputs", "content": {
        "application/json": {"schema": {"type": "object", "properties": {
            "model_name": {"type": "string"}, "model_version": {"type": "string"}, "id": {"type": "string"},
            "outputs": {"type": "array", "items": _TENSOR}}}},
        "application/octet-stream": _BINARY}}, **_ERRORS},
}  # fmt: skip
PATHS: dict[str, Any] = {
    "/GeneralModelService/inference": {"post": _PADDLE},
    "/GeneralModelService/debug": {"post": _PADDLE},
    "/v1/models/{name}/segment": {"post": _SEGMENT},
    "/v1/id-photo": {"post": _ID_PHOTO},
    "/v2/models/{name}/infer": {"post": {**_V2, "parameters": [_NAME]}},
    "/v2/models/{name}/versions/{version}/infer": {"post": {**_V2, "parameters": [_NAME, _VERSION]}},
}


def add_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) with its script and styles served from this server, not from a CDN."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} API",
                                   swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png")  # fmt: skip
