"""Defaults the server and its clients share."""

from __future__ import annotations

DEFAULT_PORT = 9393  # Paddle Serving's, so existing clients find the server where they looked before
DEFAULT_MODEL = "portrait"  # the bundled model (serving_models/portrait)
DEFAULT_ENDPOINT = f"127.0.0.1:{DEFAULT_PORT}"
