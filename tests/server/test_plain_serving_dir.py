"""A serving_server dir as Paddle Serving 0.9's converter leaves it (no segserving.yaml) is served on Paddle."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest
from servers import start_server

from segcore.repository import paddle_files
from segcore.servingconf import read_conf


def plain_copy(converted: Callable[[str], Path], tmp_path: Path) -> Path:
    server_dir = tmp_path / "plain" / "serving_server"
    shutil.copytree(converted("legacy_multi") / "serving_server", server_dir)
    for name in ("segserving.yaml", "model.onnx"):
        (server_dir / name).unlink()
    return server_dir


def test_paddle_files_follow_paddle_servings_suffix_rule(converted: Callable[[str], Path], tmp_path: Path) -> None:
    server_dir = plain_copy(converted, tmp_path)
    program, params = paddle_files(server_dir)
    assert (program.name, params.name) == ("model.pdmodel", "params.pdiparams")
    params.unlink()
    with pytest.raises(FileNotFoundError, match="python -m convert"):
        paddle_files(server_dir)


def test_plain_serving_server_dir_serves_tensors(converted: Callable[[str], Path], tmp_path: Path) -> None:
    server_dir = plain_copy(converted, tmp_path)
    conf = read_conf(server_dir)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 16, 24)).astype(np.float32)
    body = {"tensor": [{"float_data": x.ravel().tolist(), "shape": list(x.shape), "elem_type": 1, "name": "x",
                        "alias_name": "x"}], "fetch_var_names": [conf.fetches[0].alias]}  # fmt: skip
    with start_server(tmp_path, "--model", server_dir, "--thread", "1") as server:
        info = httpx.get(f"{server.url}/v1/models/plain").json()
        assert info["platform"] == "paddle" and info["image_api"] is False
        reply = httpx.post(f"{server.url}/GeneralModelService/inference", json=body, timeout=60)
        assert reply.status_code == 200, reply.text
        (tensor,) = reply.json()["outputs"][0]["tensor"]
        assert tensor["shape"] == [1, 16, 24] and tensor["name"] == "argmax_0.tmp_0"
        image = httpx.post(f"{server.url}/v1/models/plain/segment", content=b"\xff\xd8\xff", timeout=60)
        assert image.status_code == 400 and "preprocessing" in image.json()["error"]
