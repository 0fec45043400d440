"""Request-body helpers shared by the HTTP routes."""

from __future__ import annotations

from starlette.requests import Request

from server.errors import InvalidInput, ServingError, TooLarge


def too_large(limit: int) -> ServingError:
    return TooLarge(f"request body is larger than the server's limit of {limit} bytes (--max_body_size)")


async def form_image(request: Request, limit: int, params: dict[str, str]) -> bytes:
    """The one file of a multipart form (field 'image' preferred); other fields become options."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    try:
        form = await request.form(max_files=4, max_fields=32, max_part_size=limit)
    except Exception as exc:  # starlette raises MultiPartException / HTTPException for malformed forms
        raise InvalidInput(f"malformed multipart/form-data body: {exc}") from None
    files = [(k, v) for k, v in form.multi_items() if not isinstance(v, str)]
    for key, value in form.multi_items():
        if isinstance(value, str):
            params[key] = value
    if not files:
        raise InvalidInput("multipart/form-data body has no file part (send the image as field 'image')")
    _, upload = next(((k, v) for k, v in files if k == "image"), files[0])
    data = await upload.read()
    if len(data) > limit:
        raise too_large(limit)
    return data
