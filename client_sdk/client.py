"""SegClient and AsyncSegClient: segment images on a SegServing server."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from PIL import Image
from tqdm import tqdm

from client_sdk.errors import InvalidInput, SegServingError
from client_sdk.idphoto import IdPhoto, id_photo_params
from client_sdk.images import ImageInput, describe, encode
from client_sdk.result import SegResult
from client_sdk.retry import RetryPolicy, with_retries, with_retries_async
from client_sdk.transport import (
    API_KEY_ENV,
    AsyncGrpcTransport,
    AsyncHttpTransport,
    GrpcTransport,
    HttpTransport,
    Verify,
)
from segcore.defaults import DEFAULT_ENDPOINT, DEFAULT_MODEL

Protocol = Literal["http", "grpc"]
BatchItem = SegResult | SegServingError


def _options(probability: bool, class_id: int | None) -> dict[str, str]:
    options = {"probability": "true" if probability else "false"}
    if class_id is not None:
        options["class_id"] = str(class_id)
    return options


def _headers(api_key: str | None) -> dict[str, str]:
    """The key as a Bearer token: `api_key`, else env SEGSERVING_API_KEY, else none (an open server)."""
    key = api_key or os.environ.get(API_KEY_ENV)
    return {"Authorization": f"Bearer {key}"} if key else {}


def _encode(image: ImageInput, rgb: bool) -> bytes:
    try:
        data, _ = encode(image, rgb)
    except (OSError, TypeError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidInput(f"cannot read image {describe(image)}: {exc}") from None
    return data


class _ClientBase:
    """What SegClient and AsyncSegClient share: settings, the transport choice, ID-photo request building."""

    _transports: tuple[type, type]  # (HTTP, gRPC)

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, model: str = DEFAULT_MODEL, protocol: Protocol = "http",
                 timeout: float = 30.0, retries: int = 3, api_key: str | None = None,
                 backoff: float = 0.1, verify: Verify = True) -> None:  # fmt: skip
        if protocol not in ("http", "grpc"):
            raise ValueError(f"protocol must be 'http' or 'grpc', got {protocol!r}")
        self.model, self.timeout = model, timeout
        self.retry = RetryPolicy(retries, backoff)
        self._args = (endpoint, _headers(api_key), verify)
        http, grpc_ = self._transports
        self._transport = http(*self._args) if protocol == "http" else grpc_(*self._args)
        self._http = self._transport if protocol == "http" else None  # id_photo always goes over HTTP

    def _id_photo_request(self, image: ImageInput, rgb: bool, model: str | None,
                          **options: Any) -> tuple[bytes, dict[str, str]]:  # fmt: skip
        params = id_photo_params(**options)
        if model or self.model:
            params["model"] = model or self.model
        return _encode(image, rgb), params

    def _http_transport(self) -> Any:
        """The HTTP transport (id_photo always goes over HTTP), made on first use when the client speaks gRPC."""
        if self._http is None:
            self._http = self._transports[0](*self._args)
        return self._http


class SegClient(_ClientBase):
    """A connection-pooled client for one server.

    >>> client = SegClient("127.0.0.1:9393")
    >>> result = client.segment("photo.jpg")          # SegResult at the photo's size
    >>> result.mask().mean()                          # fraction of person pixels

    api_key: sent as a Bearer token (default: env SEGSERVING_API_KEY). An https:// endpoint speaks TLS (HTTP and
    gRPC); verify: True (system CAs), a CA bundle path, or False (no check; HTTP only).
    """

    _transports = (HttpTransport, GrpcTransport)

    def segment(self, image: ImageInput, *, rgb: bool = False, probability: bool = False,
                class_id: int | None = None, model: str | None = None) -> SegResult:  # fmt: skip
        """Segment one image: a path, encoded bytes, a numpy array (BGR as OpenCV reads it; rgb=True for RGB)
        or a PIL image. probability=True also returns the probability map of class_id (default: class 1)."""
        data = _encode(image, rgb)
        options = _options(probability, class_id)
        return with_retries(lambda left: self._transport.segment(model or self.model, data, options, left),
                            self.retry, self.timeout)  # fmt: skip

    def segment_batch(self, images: Iterable[ImageInput], *, concurrency: int = 4, progress: bool = True,
                      rgb: bool = False, probability: bool = False, class_id: int | None = None,
                      model: str | None = None) -> list[BatchItem]:  # fmt: skip
        """Segment many images, `concurrency` at a time. Results come back in input order; an item that failed
        holds its SegServingError instead of a SegResult, and the others are unaffected."""
        items: Sequence[ImageInput] = list(images)

        def one(image: ImageInput) -> BatchItem:
            try:
                return self.segment(image, rgb=rgb, probability=probability, class_id=class_id, model=model)
            except SegServingError as exc:
                return exc

        with ThreadPoolExecutor(max(1, concurrency)) as pool:
            results = pool.map(one, items)
            return list(tqdm(results, total=len(items), disable=not progress, desc="segment", unit="img"))

    def id_photo(self, image: ImageInput, *, background: str = "white", size: str = "1inch",
                 width: int | None = None, height: int | None = None, crop: str = "face", format: str | None = None,
                 max_kb: int | None = None, sheet: str | None = None, refine: bool = True, rgb: bool = False,
                 model: str | None = None) -> IdPhoto:  # fmt: skip
        """Make an ID photo from a portrait: background white|blue|red|#RRGGBB|r,g,b|transparent; size
        original|1inch|1inch-large|2inch-small|2inch|custom (with width, height px); crop='face' places the head
        as ID rules expect (crop='none' keeps the whole picture); JPEG or PNG at 300 DPI; max_kb caps the file
        size; sheet='4R' or '5inch' adds a print sheet. Always over HTTP (the same port serves gRPC)."""
        data, params = self._id_photo_request(image, rgb, model, background=background, size=size, width=width,
                                              height=height, crop=crop, format=format, max_kb=max_kb, sheet=sheet,
                                              refine=refine)  # fmt: skip
        http = self._http_transport()
        body = with_retries(lambda left: http.post_image("/v1/id-photo", data, params, left), self.retry,
                            self.timeout)  # fmt: skip
        return IdPhoto.from_json(json.loads(body))

    def close(self) -> None:
        self._transport.close()
        if self._http is not None and self._http is not self._transport:
            self._http.close()

    def __enter__(self) -> SegClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncSegClient(_ClientBase):
    """SegClient for asyncio: the same methods, awaitable."""

    _transports = (AsyncHttpTransport, AsyncGrpcTransport)

    async def segment(self, image: ImageInput, *, rgb: bool = False, probability: bool = False,
                      class_id: int | None = None, model: str | None = None) -> SegResult:  # fmt: skip
        """See SegClient.segment."""
        data = _encode(image, rgb)
        options = _options(probability, class_id)
        return await with_retries_async(
            lambda left: self._transport.segment(model or self.model, data, options, left), self.retry, self.timeout
        )

    async def segment_batch(self, images: Iterable[ImageInput], *, concurrency: int = 4, progress: bool = True,
                            rgb: bool = False, probability: bool = False, class_id: int | None = None,
                            model: str | None = None) -> list[BatchItem]:  # fmt: skip
        """See SegClient.segment_batch."""
        items = list(images)
        gate = asyncio.Semaphore(max(1, concurrency))
        bar = tqdm(total=len(items), disable=not progress, desc="segment", unit="img")

        async def one(image: ImageInput) -> BatchItem:
            async with gate:
                try:
                    return await self.segment(image, rgb=rgb, probability=probability, class_id=class_id,
                                              model=model)  # fmt: skip
                except SegServingError as exc:
                    return exc
                finally:
                    bar.update(1)

        try:
            return list(await asyncio.gather(*(one(image) for image in items)))
        finally:
            bar.close()

    async def id_photo(self, image: ImageInput, *, background: str = "white", size: str = "1inch",
                       width: int | None = None, height: int | None = None, crop: str = "face",
                       format: str | None = None, max_kb: int | None = None, sheet: str | None = None,
                       refine: bool = True, rgb: bool = False, model: str | None = None) -> IdPhoto:  # fmt: skip
        """See SegClient.id_photo."""
        data, params = self._id_photo_request(image, rgb, model, background=background, size=size, width=width,
                                              height=height, crop=crop, format=format, max_kb=max_kb, sheet=sheet,
                                              refine=refine)  # fmt: skip
        http = self._http_transport()
        body = await with_retries_async(lambda left: http.post_image("/v1/id-photo", data, params, left),
                                        self.retry, self.timeout)  # fmt: skip
        return IdPhoto.from_json(json.loads(body))

    async def close(self) -> None:
        await self._transport.close()
        if self._http is not None and self._http is not self._transport:
            await self._http.close()

    async def __aenter__(self) -> AsyncSegClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
