"""The ID-photo API's work inside a worker: segment the portrait, then make the ID photo from its alpha."""

from __future__ import annotations

import base64

import numpy as np
import orjson

from idphoto.errors import IdPhotoError
from server.errors import InvalidInput, ServingError, Unprocessable
from server.jobs import Job
from server.workers.image_job import Finish, ImageJobCodec

OUTPUTS = ("photo", "sheet", "json")


class IdPhotoJobCodec:
    """POST /v1/id-photo: options are idphoto.IdPhotoOptions' query parameters plus output=photo|sheet|json."""

    def __init__(self, images: ImageJobCodec) -> None:
        self.images = images

    def prepare(self, job: Job) -> tuple[dict[str, np.ndarray], Finish]:
        from idphoto.pipeline import IdPhotoOptions, make_id_photo

        params = dict(job.params)
        output = params.pop("output", "photo")
        if output not in OUTPUTS:
            raise InvalidInput(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")
        try:
            options = IdPhotoOptions.parse(params)
        except IdPhotoError as exc:
            raise _error(exc) from None
        if output == "sheet" and not options.sheet:
            raise InvalidInput("output=sheet needs a sheet size: add sheet=4R or sheet=5inch")
        image, tensor, trans_info = self.images.load(job.body)
        post = self.images.post

        def finish(outputs: dict[str, np.ndarray], timings: dict[str, float]) -> tuple[bytes, str]:
            result = self.images.segment(outputs, trans_info, want_scores=post.output_op != "argmax")
            alpha = result.scores[1] if result.scores is not None else (result.label_map == 1).astype(np.float32)
            try:
                photo = make_id_photo(image, alpha, options)
            except IdPhotoError as exc:
                raise _error(exc) from None
            if output == "photo":
                return photo.photo, photo.content_type
            if output == "sheet":
                assert photo.sheet is not None
                return photo.sheet, photo.content_type
            doc = {
                "width": photo.width,
                "height": photo.height,
                "content_type": photo.content_type,
                "face_box": list(photo.face_box) if photo.face_box is not None else None,
                "levelled_degrees": round(photo.levelled_degrees, 3),
                "tone": {
                    "white_balance_gains_rgb": [round(g, 4) for g in photo.tone.gains[::-1]],
                    "exposure": round(photo.tone.exposure, 4),
                },
                "photo": base64.b64encode(photo.photo).decode("ascii"),
                "sheet": base64.b64encode(photo.sheet).decode("ascii") if photo.sheet is not None else None,
                "timings_ms": {k: round(v * 1000, 3) for k, v in timings.items()},
            }
            return orjson.dumps(doc), "application/json"

        return {self.images.input_name: tensor[None]}, finish


def _error(exc: IdPhotoError) -> ServingError:
    """The library's 422 (the photo cannot satisfy valid options) or 400 (a bad option) as a server error."""
    return Unprocessable(exc.message) if exc.status == 422 else InvalidInput(exc.message)
