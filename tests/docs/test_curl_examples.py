"""Every curl command in the README and docs/ runs as written against a live server and gets a 2xx with the
documented output type. Only the port is changed; curl itself is wrapped to report the status on stderr."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import ROOT, child_env
from servers import ServerProcess, start_server
from skimage import data

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")

MARKDOWN = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
MAGIC = {".png": b"\x89PNG\r\n\x1a\n", ".jpg": b"\xff\xd8\xff", ".jpeg": b"\xff\xd8\xff"}


def curl_commands() -> list[tuple[str, str]]:
    """(where, command) for each curl command in a shell code block, continuation lines joined."""
    found = []
    for path in MARKDOWN:
        text = path.read_text()
        for block in re.findall(r"```(?:bash|sh|shell|console)\n(.*?)```", text, flags=re.S):
            for command in block.replace("\\\n", " ").splitlines():
                if command.strip().startswith("curl "):
                    found.append((f"{path.relative_to(ROOT)}: {command.strip()[:60]}", command.strip()))
    return found


COMMANDS = curl_commands()


def test_the_readme_has_curl_examples() -> None:
    assert len(COMMANDS) >= 6
    assert all("127.0.0.1:9393" in command for _, command in COMMANDS), "examples use the default address"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, ServerProcess]]:
    """A folder holding photo.jpg, a `curl` on PATH that reports the status code on stderr, and a server."""
    tmp = tmp_path_factory.mktemp("curl")
    cv2.imwrite(str(tmp / "photo.jpg"), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    wrapper = tmp / "bin" / "curl"
    wrapper.parent.mkdir()
    report = '--write-out "%{stderr}status=%{http_code}\\n"'
    wrapper.write_text(f'#!/bin/sh\nexec {shutil.which("curl")} {report} "$@"\n')
    wrapper.chmod(0o755)
    with start_server(tmp_path_factory.mktemp("curl-server"), "--thread", "1") as server:
        yield tmp, server


@pytest.mark.parametrize("command", [c for _, c in COMMANDS], ids=[w for w, _ in COMMANDS])
def test_curl_example_answers_2xx_with_its_documented_output(workspace, command: str) -> None:
    tmp, server = workspace
    argv = shlex.split(command)
    out = Path(tmp / argv[argv.index("-o") + 1]) if "-o" in argv else None
    if out is not None:
        out.unlink(missing_ok=True)
    env = child_env(PATH=f"{tmp / 'bin'}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(["bash", "-c", command.replace("127.0.0.1:9393", server.address)], cwd=tmp, env=env,
                          capture_output=True, timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    status = int(re.search(rb"status=(\d+)", proc.stderr).group(1))
    body = out.read_bytes() if out is not None else proc.stdout
    assert 200 <= status < 300, body[:500]
    if out is not None:
        assert body.startswith(MAGIC[out.suffix]), f"{out.name} is not a {out.suffix} file: {body[:80]!r}"
        assert cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_UNCHANGED) is not None
    elif "output=json" in command:
        reply = json.loads(body)
        assert reply["width"] == 512 and reply["height"] == 512
    else:
        assert body.strip(), "the command prints the answer"
