"""The intended import graph (docs/architecture.md), checked on every module's imports, lazy ones included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TRANSPORTS = ("fastapi", "starlette", "uvicorn", "grpc", "httpx", "multipart")
# client_sdk shares only these pure wire modules with the server
SHARED_WIRE = ("segcore.dtypes", "segcore.proto", "segcore.servingconf", "segcore.wire", "segcore.palette",
               "segcore.defaults")  # fmt: skip

# (folder or file, forbidden import prefixes, allowed exceptions, why)
RULES = [
    ("segcore/", ("server", "app", "idphoto", "client_sdk", "convert", "benchmarks", *TRANSPORTS), (),
     "the serving core knows no transport and no application"),
    ("client_sdk/", ("server", "convert", "app", "idphoto", "benchmarks", "segcore"), SHARED_WIRE,
     "the SDK installs without the server: it shares only pure wire modules"),
    ("idphoto/", ("server", "client_sdk", "app", "convert", "benchmarks", *TRANSPORTS), (),
     "the ID-photo library is transport-free"),
    ("app/", ("server",), (), "the web app reaches the server only through client_sdk (or in-process segcore)"),
    ("server/rest/", ("server.workers",), (), "transports do not reach into the workers"),
    ("server/grpc/", ("server.workers",), (), "transports do not reach into the workers"),
    ("server/codecs/", ("server.workers", "server.rest", "server.grpc", *TRANSPORTS), (),
     "codecs turn bytes into values: no workers, no transport"),
    ("convert/", ("server", "app", "client_sdk", "benchmarks"), (), "the converter needs only the core"),
    ("server/settings.py", ("server",), ("server.auth",),
     "settings are plain values the workers read, not the other way round (server.auth's ApiKeys is one)"),
    ("server/auth.py", ("server", "segcore"), (), "API keys are a plain value any transport (and settings) may use"),
    ("server/dataplane.py", ("server.codecs", "server.rest", "server.grpc", *TRANSPORTS), (),
     "the dataplane knows no protocol"),
]  # fmt: skip


def imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def violations(folder: str, forbidden: tuple[str, ...], allowed: tuple[str, ...], root: Path = ROOT) -> list[str]:
    return [
        f"{path.relative_to(root)}:{line}: imports {name}"
        for path in sorted((root / folder).rglob("*.py") if (root / folder).is_dir() else [root / folder])
        if "_pb2" not in path.name
        for line, name in imports(path)
        if under(name, forbidden) and not under(name, allowed)
    ]


@pytest.mark.parametrize(("folder", "forbidden", "allowed", "why"), RULES, ids=[r[0] for r in RULES])
def test_import_rule(folder: str, forbidden: tuple[str, ...], allowed: tuple[str, ...], why: str) -> None:
    assert (ROOT / folder).exists()
    found = violations(folder, forbidden, allowed)
    assert not found, f"{why}:\n" + "\n".join(found)


def test_a_violation_is_reported(tmp_path: Path) -> None:
    """The checker itself: a forbidden import, lazy or not, is named with its line."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text("import os\n\ndef f():\n    import server.workers.pool\n")
    assert violations("pkg/", ("server.workers",), (), root=tmp_path) == ["pkg/m.py:4: imports server.workers.pool"]
    assert violations("pkg/", ("server.workers",), ("server.workers.pool",), root=tmp_path) == []


def test_no_module_is_over_400_lines() -> None:
    sources = [p for top in ("server", "segcore", "client_sdk", "convert", "idphoto", "app", "benchmarks", "tests")
               for p in (ROOT / top).rglob("*.py") if "_pb2" not in p.name]  # fmt: skip
    long = {str(p.relative_to(ROOT)): n for p in sources if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long
