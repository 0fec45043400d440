"""CORS for browsers calling the API from other origins (--cors_origins)."""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware

from server.rest.inference import ASGIApp


def with_cors(app: ASGIApp, origins: tuple[str, ...]) -> ASGIApp:
    """CORS outermost, so a browser's preflight (which carries no key) is answered before the key check."""
    if not origins:
        return app
    return CORSMiddleware(
        app,
        allow_origins=list(origins),
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "X-API-Key", "Content-Type", "Content-Encoding", "Accept-Encoding"],
        expose_headers=["Retry-After", "Retry-After-Ms"],
        max_age=600,
    )
