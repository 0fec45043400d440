"""SegServing client SDK: segment images on a SegServing server, or talk Paddle Serving's protocol.

    import client_sdk
    result = client_sdk.SegClient("127.0.0.1:9393").segment("photo.jpg")
    result.label_map            # H x W class ids at the photo's size

Light dependencies only (numpy, Pillow, httpx, grpcio, protobuf, tqdm); never imports paddle or onnxruntime.
"""

from typing import Any

from client_sdk.client import AsyncSegClient, BatchItem, SegClient
from client_sdk.errors import (
    AuthError,
    InvalidInput,
    ModelNotFound,
    SegServingError,
    ServerBusy,
    ServerError,
    Timeout,
    Unavailable,
)
from client_sdk.idphoto import IdPhoto
from client_sdk.images import ImageInput
from client_sdk.result import SegResult
from client_sdk.serving import Client, HttpClient, ServingClient, UnknownFetchName
from segcore.defaults import DEFAULT_ENDPOINT, DEFAULT_MODEL

__version__ = "0.1.0"


def segment(
    image: ImageInput,
    endpoint: str = DEFAULT_ENDPOINT,
    model: str = DEFAULT_MODEL,
    api_key: str | None = None,
    **options: Any,
) -> SegResult:
    """One-shot `SegClient(endpoint, model, api_key=api_key).segment(image, **options)`."""
    with SegClient(endpoint, model=model, api_key=api_key) as client:
        return client.segment(image, **options)


__all__ = [
    "AsyncSegClient",
    "AuthError",
    "BatchItem",
    "Client",
    "HttpClient",
    "IdPhoto",
    "InvalidInput",
    "ModelNotFound",
    "SegClient",
    "SegResult",
    "SegServingError",
    "ServerBusy",
    "ServerError",
    "ServingClient",
    "Timeout",
    "Unavailable",
    "UnknownFetchName",
    "__version__",
    "segment",
]
