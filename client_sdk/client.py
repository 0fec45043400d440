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

from client_sdk.endpoints import Policy, Router, failover, failover_async
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
    """What SegClient and AsyncSegClient share: settings, the endpoints and their transports, ID-photo requests."""

    _transports: tuple[type, type]  # (HTTP, gRPC)

    def __init__(self, endpoint: str | Sequence[str] = DEFAULT_ENDPOINT, model: str = DEFAULT_MODEL,
                 protocol: Protocol = "http", timeout: float = 30.0, retries: int = 3, api_key: str | None = None,
                 backoff: float = 0.1, verify: Verify = True, balance: Policy = "round_robin") -> None:  # fmt: skip
        if protocol not in ("http", "grpc"):
            raise ValueError(f"protocol must be 'http' or 'grpc', got {protocol!r}")
        endpoints = [endpoint] if isinstance(endpoint, str) else list(endpoint)
        if not endpoints:
            raise ValueError("give at least one endpoint")
        self.model, self.timeout, self.protocol = model, timeout, protocol
        self.retry = RetryPolicy(retries, backoff)
        self._router = Router(policy=balance)
        self._router.add("default", endpoints)
        self._headers, self._verify = _headers(api_key), verify
        self._made: dict[tuple[str, str], Any] = {}  # (protocol, endpoint) -> transport, made on first use

    def _transport(self, endpoint: str, protocol: str | None = None) -> Any:
        """The transport to `endpoint` (id_photo always goes over HTTP, whatever the client's protocol)."""
        key = (protocol or self.protocol, endpoint)
        if key not in self._made:
            kind = self._transports[0] if key[0] == "http" else self._transports[1]
            self._made[key] = kind(endpoint, self._headers, self._verify)
        return self._made[key]

    def _id_photo_request(self, image: ImageInput, rgb: bool, model: str | None,
                          **options: Any) -> tuple[bytes, dict[str, str]]:  # fmt: skip
        params = id_photo_params(**options)
        if model or self.model:
            params["model"] = model or self.model
        return _encode(image, rgb), params


class SegClient(_ClientBase):
    """A connection-pooled client for one server, or several: SegClient(["10.0.0.1:9393", "10.0.0.2:9393"])
    spreads calls round-robin (balance="least_outstanding": to the one with the fewest calls in flight); one that
    cannot be reached or answers 503 is skipped for a growing cooldown and the call goes to the next at once.

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

        def send(endpoint: str, left: float) -> SegResult:
            return self._transport(endpoint).segment(model or self.model, data, options, left)

        return with_retries(lambda left: failover(self._router, send, left)[0], self.retry, self.timeout)

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

    def id_photo(self, image: ImageInput, *, background: str | None = None, size: str = "1inch",
                 width: int | None = None, height: int | None = None, crop: str = "face", face: str = "single",
                 format: str | None = None, max_kb: int | None = None, min_kb: int | None = None,
                 sheet: str | None = None, refine: bool = True, white_balance: bool = False,
                 brightness: bool = False, width_mm: float | None = None, height_mm: float | None = None,
                 dpi: int | None = None, rgb: bool = False, model: str | None = None) -> IdPhoto:  # fmt: skip
        """Make an ID photo from a portrait: background white|blue|red|light-grey|cream|#RRGGBB|r,g,b|transparent
        (None: the size's own, else white); size a preset (id_photo_presets() lists them: 1inch, us-passport,
        schengen-visa, ...) or custom (width and height in px, or width_mm and height_mm at dpi); crop='face' places
        the head
        as ID rules expect, levelling a tilted head (crop='none' keeps the whole picture); a photo with several faces
        is refused unless face='largest'; JPEG or PNG at the size's DPI; max_kb and min_kb bound the file
        size; sheet='4R', '5inch' or 'A4' adds a print sheet; refine=False skips the edge matting and
        decontamination; white_balance and brightness correct the person's colour cast and exposure. Always over
        HTTP (the same port serves gRPC)."""
        data, params = self._id_photo_request(image, rgb, model, background=background, size=size, width=width,
                                              height=height, crop=crop, face=face, format=format, max_kb=max_kb,
                                              min_kb=min_kb, sheet=sheet, refine=refine, white_balance=white_balance,
                                              brightness=brightness, width_mm=width_mm, height_mm=height_mm,
                                              dpi=dpi)  # fmt: skip

        def send(endpoint: str, left: float) -> bytes:
            return self._transport(endpoint, "http").post_image("/v1/id-photo", data, params, left)

        body = with_retries(lambda left: failover(self._router, send, left)[0], self.retry, self.timeout)
        return IdPhoto.from_json(json.loads(body))

    def id_photo_presets(self) -> dict[str, Any]:
        """The server's ID-photo sizes (each document's rules in mm), backgrounds and print sheets."""

        def send(endpoint: str, left: float) -> bytes:
            return self._transport(endpoint, "http").get("/v1/id-photo/presets", left)

        return dict(json.loads(with_retries(lambda left: failover(self._router, send, left)[0], self.retry,
                                            self.timeout)))  # fmt: skip

    def close(self) -> None:
        for transport in self._made.values():
            transport.close()
        self._made.clear()

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

        async def send(endpoint: str, left: float) -> SegResult:
            return await self._transport(endpoint).segment(model or self.model, data, options, left)

        answer = await with_retries_async(lambda left: failover_async(self._router, send, left), self.retry,
                                          self.timeout)  # fmt: skip
        return answer[0]

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

    async def id_photo(self, image: ImageInput, *, background: str | None = None, size: str = "1inch",
                       width: int | None = None, height: int | None = None, crop: str = "face",
                       face: str = "single", format: str | None = None, max_kb: int | None = None,
                       min_kb: int | None = None, sheet: str | None = None, refine: bool = True,
                       white_balance: bool = False, brightness: bool = False, width_mm: float | None = None,
                       height_mm: float | None = None, dpi: int | None = None, rgb: bool = False,
                       model: str | None = None) -> IdPhoto:  # fmt: skip
        """See SegClient.id_photo."""
        data, params = self._id_photo_request(image, rgb, model, background=background, size=size, width=width,
                                              height=height, crop=crop, face=face, format=format, max_kb=max_kb,
                                              min_kb=min_kb, sheet=sheet, refine=refine, white_balance=white_balance,
                                              brightness=brightness, width_mm=width_mm, height_mm=height_mm,
                                              dpi=dpi)  # fmt: skip

        async def send(endpoint: str, left: float) -> bytes:
            return await self._transport(endpoint, "http").post_image("/v1/id-photo", data, params, left)

        answer = await with_retries_async(lambda left: failover_async(self._router, send, left), self.retry,
                                          self.timeout)  # fmt: skip
        return IdPhoto.from_json(json.loads(answer[0]))

    async def id_photo_presets(self) -> dict[str, Any]:
        """See SegClient.id_photo_presets."""

        async def send(endpoint: str, left: float) -> bytes:
            return await self._transport(endpoint, "http").get("/v1/id-photo/presets", left)

        answer = await with_retries_async(lambda left: failover_async(self._router, send, left), self.retry,
                                          self.timeout)  # fmt: skip
        return dict(json.loads(answer[0]))

    async def close(self) -> None:
        for transport in self._made.values():
            await transport.close()
        self._made.clear()

    async def __aenter__(self) -> AsyncSegClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
