"""Where ID photos are made: a SegServing server through the SDK, or the bundled model in this process."""

from __future__ import annotations

import io
import threading
from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np
from PIL import Image, ImageOps

from client_sdk import SegClient, SegServingError
from client_sdk.idphoto import id_photo_params
from segcore.defaults import DEFAULT_MODEL


@dataclass(frozen=True)
class PhotoRequest:
    """What the user asked for; the fields are POST /v1/id-photo's query parameters."""

    background: str = "white"
    size: str = "1inch"
    width: int | None = None
    height: int | None = None
    crop: str = "face"
    face: str = "single"  # several faces: refuse the photo, or 'largest'
    format: str = "jpeg"
    max_kb: int | None = None
    min_kb: int | None = None
    sheet: str | None = None
    refine: bool = True
    white_balance: bool = False
    brightness: bool = False
    width_mm: float | None = None  # a custom size in millimetres, at dpi, instead of width and height
    height_mm: float | None = None
    dpi: int | None = None

    def params(self) -> dict[str, str]:
        """The query parameters as idphoto.IdPhotoOptions.parse takes them."""
        params = id_photo_params(**asdict(self))
        del params["output"]
        return params


@dataclass(frozen=True)
class Generated:
    """One result: the segmentation overlay (RGB uint8) and the photo and sheet bytes exactly as produced."""

    overlay: np.ndarray
    photo: bytes
    content_type: str
    width: int
    height: int
    sheet: bytes | None = None


class BackendError(Exception):
    """The photo could not be made; `status` follows HTTP (400 bad option, 422 photo unusable, 503 no server)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Backend(Protocol):
    """Makes an ID photo and the segmentation overlay from an encoded image (JPEG, PNG, WebP or BMP bytes)."""

    description: str

    def make(self, image: bytes, request: PhotoRequest) -> Generated: ...

    def close(self) -> None: ...


def decode_rgb(image: bytes) -> np.ndarray:
    """RGB uint8 with the EXIF orientation applied, as the server decodes it."""
    try:
        with Image.open(io.BytesIO(image)) as pil:
            return np.asarray(ImageOps.exif_transpose(pil).convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise BackendError(f"cannot read the image: {exc}") from None


class RemoteBackend:
    """A running SegServing server, through client_sdk.SegClient (POST /v1/id-photo and the segment API)."""

    def __init__(self, address: str, model: str = DEFAULT_MODEL, timeout: float = 60.0) -> None:
        self.description = f"server {address}"
        self.client = SegClient(address, model=model, timeout=timeout)

    def make(self, image: bytes, request: PhotoRequest) -> Generated:
        try:
            photo = self.client.id_photo(image, **asdict(request))
            segmentation = self.client.segment(image)
        except SegServingError as exc:
            raise BackendError(exc.message, exc.status or 503) from None
        try:
            overlay = segmentation.overlay(decode_rgb(image), rgb=True)
        except ValueError as exc:
            raise BackendError(str(exc)) from None
        return Generated(overlay, photo.photo, photo.content_type, photo.width, photo.height, photo.sheet)

    def close(self) -> None:
        self.client.close()


class LocalBackend:
    """The bundled model on ONNX Runtime in this process, then idphoto.make_id_photo: the server's steps."""

    def __init__(self, model: str = DEFAULT_MODEL, threads: int = 1) -> None:
        from segcore.engines import EngineOptions, create_engine
        from segcore.pipeline import SegmentationPipeline
        from segcore.repository import ModelRepository

        spec = ModelRepository().resolve(model)
        if spec.config is None:
            raise ValueError(f"model {model!r} has no segserving.yaml")
        engine = create_engine(spec.server_dir, spec.config, "onnxruntime", EngineOptions(cpu_threads=threads))
        self.pipeline = SegmentationPipeline(spec.config, engine)
        self.description = f"in-process model {spec.name!r} (onnxruntime)"
        self._lock = threading.Lock()  # an engine runs one batch at a time

    def make(self, image: bytes, request: PhotoRequest) -> Generated:
        from idphoto.pipeline import IdPhotoError, IdPhotoOptions, make_id_photo
        from segcore.images import ImageError, decode_image, overlay

        try:
            options = IdPhotoOptions.parse(request.params())
            bgr = decode_image(image)
            with self._lock:
                result = self.pipeline.segment(bgr, want_scores=True)
            assert result.scores is not None
            photo = make_id_photo(bgr, result.scores[1], options)
        except IdPhotoError as exc:
            raise BackendError(exc.message, exc.status) from None
        except ImageError as exc:
            raise BackendError(str(exc), 400) from None
        rgb_overlay = np.ascontiguousarray(overlay(bgr, result.label_map)[:, :, ::-1])
        return Generated(rgb_overlay, photo.photo, photo.content_type, photo.width, photo.height, photo.sheet)

    def close(self) -> None:
        pass
