"""Fixtures for end-to-end server tests (the processes themselves: servers.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest
from servers import ServerProcess, start_server


@pytest.fixture
def server_factory(tmp_path: Path) -> Callable[..., contextlib.AbstractContextManager[ServerProcess]]:
    """server_factory(*flags) -> context manager of a started, ready server."""
    return lambda *args, **kw: start_server(tmp_path, *args, **kw)


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server")
