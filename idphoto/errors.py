"""The one error type of the ID-photo library."""

from __future__ import annotations


class IdPhotoError(ValueError):
    """A request the library cannot honour; `status` is the HTTP status a server should answer with.

    400: a bad parameter. 422: valid parameters the photo cannot satisfy (no face, image too small,
    size limit unreachable).
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
