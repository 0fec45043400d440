"""The README's client SDK examples run as written against a real server (only the port is changed)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
from helpers import ROOT, child_env
from servers import start_server
from skimage import data


def sdk_examples() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Client SDK", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_readme_has_sdk_examples() -> None:
    assert len(sdk_examples()) >= 4


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("readme")
    cv2.imwrite(str(tmp / "photo.jpg"), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    (tmp / "serving_models").symlink_to(ROOT / "serving_models")
    with start_server(tmp, "--thread", "1") as server:
        yield tmp, server


@pytest.mark.parametrize("index", range(len(sdk_examples())))
def test_readme_sdk_example_runs(workspace, index: int) -> None:
    tmp, server = workspace
    code = sdk_examples()[index].replace("127.0.0.1:9393", server.address)
    code = code.replace("localhost:9393", f"localhost:{server.port}")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp, env=child_env(), capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip(), "every example prints its result"
    if "save(" in code:
        assert Path(tmp / "photo_mask.png").is_file()
