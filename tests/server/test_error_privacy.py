"""An unexpected failure answers with a request id and no internals; the details go to the server's log."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
from servers import start_server


def test_an_engine_failure_keeps_its_text_in_the_log(converted: Callable[[str], Path], tmp_path: Path) -> None:
    # Paddle cannot pool a 1x1 input into 2x2 adaptive bins: a real C++ failure inside inference.
    entry = converted("adaptive")
    with start_server(tmp_path, "--model", entry, "--engine", "paddle", "--thread", "1") as server:
        body = {"inputs": [{"name": "x", "shape": [1, 3, 1, 1], "datatype": "FP32", "data": [0.0, 0.0, 0.0]}]}
        reply = httpx.post(f"{server.url}/v2/models/adaptive/infer", json=body, timeout=60)
        assert reply.status_code == 500
        error = reply.json()
        match = re.fullmatch(r"inference failed \(request id ([0-9a-f]{16})\)", error["error"])
        assert match and error["code"] == "internal", error
        assert not re.search(r"std::|Exception|Error\b|Traceback|/[a-z_]+/", reply.text), reply.text
        logged = [line for line in server.log().splitlines() if match.group(1) in line]
        assert len(logged) == 1 and "inference failed: " in logged[0] and "exception" in logged[0].lower(), logged
        ok = {"inputs": [{"name": "x", "shape": [1, 3, 8, 8], "datatype": "FP32", "data": [0.0] * 192}]}
        assert httpx.post(f"{server.url}/v2/models/adaptive/infer", json=ok, timeout=60).status_code == 200
