"""Front side of --direct_http's Calls: a worker that serves HTTP itself asks the front for what only the front
has. An HttpCall is answered by running the front's app (past CORS and the API-key gate, which the worker
applied) on the request as the worker read it; a SubmitCall runs a job on another model's workers."""

from __future__ import annotations

from typing import Any

from server.dataplane import DataPlane
from server.rest.inference import ASGIApp
from server.workers.messages import HttpCall, HttpReply, SubmitCall


class Relay:
    """Answers workers' calls with `app` (the routes behind the gate) and `plane`."""

    def __init__(self, plane: DataPlane, app: ASGIApp) -> None:
        self.plane = plane
        self.app = app

    async def __call__(self, what: SubmitCall | HttpCall) -> Any:
        if isinstance(what, SubmitCall):
            return await self.plane.workers[what.model].submit(what.job)
        return await self.http(what)

    async def http(self, call: HttpCall) -> HttpReply:
        scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
            "method": call.method, "scheme": "http", "path": call.path, "raw_path": call.path.encode("utf-8"),
            "query_string": call.query, "root_path": "", "headers": call.headers, "client": call.client,
            "server": None,
        }  # fmt: skip
        sent = False
        status, headers, parts = 500, [], []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": call.body, "more_body": False}

        async def send(message: Any) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status, headers = message["status"], list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return HttpReply(status, headers, b"".join(parts))
