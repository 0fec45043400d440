"""The HTTP side of API keys: an ASGI gate in front of every route but the health probes (and /metrics
unless --metrics_auth). A refused request gets 401, `WWW-Authenticate`, and the usual JSON error body; with
--rate_limit, an inference request over its key's rate gets 429 with Retry-After."""

from __future__ import annotations

from typing import Protocol

from server.auth import CHALLENGE, ApiKeys, credential, refusal
from server.codecs.errors import JSON, json_error
from server.errors import RateLimited, Unauthenticated
from server.ratelimit import RateLimiter
from server.rest.inference import ASGIApp, Receive, Scope, Send, is_inference, retry_headers, send_response

OPEN_PREFIXES = ("/health/", "/v2/health/")


class RefusalCounter(Protocol):
    def rate_limited(self, transport: str) -> None: ...


class AuthGate:
    """ASGI app: requests that carry an accepted key (or need none) go on to `app`; others get 401."""

    def __init__(self, app: ASGIApp, keys: ApiKeys, metrics_auth: bool = False, limiter: RateLimiter | None = None,
                 metrics: RefusalCounter | None = None) -> None:  # fmt: skip
        self.app = app
        self.keys = keys
        self.metrics_auth = metrics_auth
        self.limiter = limiter
        self.metrics = metrics

    def _open(self, path: str) -> bool:
        return path.startswith(OPEN_PREFIXES) or (path == "/metrics" and not self.metrics_auth)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys.enabled or self._open(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        presented = credential(_text(headers.get(b"authorization")), _text(headers.get(b"x-api-key")))
        identity = self.keys.identify(presented)
        if identity is None:
            error = Unauthenticated(refusal(presented))
            await send_response(send, error.status, json_error(error), JSON, {"WWW-Authenticate": CHALLENGE})
            return
        if self.limiter is not None and is_inference(scope["path"]):
            try:
                self.limiter.check(identity)
            except RateLimited as exc:
                if self.metrics is not None:
                    self.metrics.rate_limited("http")
                await send_response(send, exc.status, json_error(exc), JSON, retry_headers(exc.retry_after))
                return
        await self.app(scope, receive, send)


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None
