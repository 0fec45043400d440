"""Every third-party import is declared in the extra that the README tells the user to install for that part.

Imports are read with `ast` (module level and inside functions), mapped to distributions with the installed
packages' metadata, and looked up in pyproject.toml's dependency lists, direct entries only: a package that is
only there because another one pulls it in can vanish with that package's next release.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from functools import cache
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent
BASE = ""  # the SDK: `pip install .`

# Path prefix -> the extra its code runs under; the longest matching prefix wins.
PARTS = {
    "client_sdk/": BASE,
    "serving_models/": BASE,
    "segcore/": "server",
    "segcore/engines/paddle_inference.py": "paddle",
    "server/": "server",
    "idphoto/": "server",
    "convert/": "convert",
    "app/": "app",
    "benchmarks/": "bench",
    "bulk/": "ray",
    "segserving/": BASE,
    "tests/": "dev",
}
# Entry points whose module-level import closure must also load under a lighter extra than their files' own.
CLOSURES = {"client_sdk/": BASE, "tests/client_sdk/": "test"}
# Imported, but installed by scripts/test rather than by an extra (its declared dependencies break numpy 2).
OUTSIDE_EXTRAS = {"paddleseg": "paddleseg=="}


@cache
def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert match, f"unparsable requirement {requirement!r}"
    return normalize(match.group())


@cache
def declared(extra: str) -> frozenset[str]:
    """Distributions listed directly in `extra` (BASE: the core dependencies) or in the extras it includes."""
    own = normalize(project()["name"])
    names = {requirement_name(r) for r in project()["dependencies"]}
    for requirement in project()["optional-dependencies"][extra] if extra else []:
        if requirement_name(requirement) == own:
            for included in re.search(r"\[(.*)\]", requirement).group(1).split(","):
                names |= declared(included.strip())
        else:
            names.add(requirement_name(requirement))
    return frozenset(names)


def first_party() -> set[str]:
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    return packages | {p.stem for p in (ROOT / "tests").rglob("*.py")}


def python_files() -> list[Path]:
    files = [p for prefix in PARTS if prefix.endswith("/") for p in (ROOT / prefix).rglob("*.py")]
    return sorted({p for p in files if "_pb2" not in p.name})


@cache
def imports(path: Path, module_level_only: bool = False) -> frozenset[str]:
    """Absolute imported module names (dotted, as written)."""
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if module_level_only else ast.walk(tree)
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return frozenset(names)


def third_party(names: frozenset[str]) -> set[str]:
    tops = {name.split(".")[0] for name in names}
    return {t for t in tops if t not in sys.stdlib_module_names and t not in first_party() and t != "__future__"}


def extra_of(path: Path) -> str:
    relative = path.relative_to(ROOT).as_posix()
    return PARTS[max((p for p in PARTS if relative.startswith(p)), key=len)]


def module_file(name: str) -> Path | None:
    """The checkout's file for a first-party module name (packages, or the tests' helper modules)."""
    parts = name.split(".")
    for base in (ROOT, ROOT / "tests", ROOT / "tests" / "server", ROOT / "tests" / "client_sdk"):
        for candidate in (base.joinpath(*parts).with_suffix(".py"), base.joinpath(*parts, "__init__.py")):
            if candidate.is_file():
                return candidate
    return None


def closure(start: list[Path]) -> set[Path]:
    """The files these import at module level, followed through first-party modules (and their packages)."""
    seen: set[Path] = set()
    todo = list(start)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        if path.name == "conftest.py" or path.parent.name == "tests":
            todo.extend(p for p in [ROOT / "tests" / "conftest.py"] if p.is_file())
        for name in imports(path, module_level_only=True):
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__.py and a/b/__init__.py too
                found = module_file(".".join(parts[:depth]))
                if found is not None:
                    todo.append(found)
    return seen


@cache
def distributions_of(module: str) -> tuple[str, ...]:
    return tuple(sorted(normalize(d) for d in importlib.metadata.packages_distributions().get(module, [])))


def undeclared(path: Path, extra: str, module_level_only: bool = False) -> list[str]:
    problems = []
    for module in sorted(third_party(imports(path, module_level_only))):
        where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
        if module in OUTSIDE_EXTRAS:
            continue
        dists = distributions_of(module)
        if not dists:
            problems.append(f"{where}: imports {module!r}, which no installed distribution provides")
        elif not set(dists) & declared(extra):
            name = (extra and f"[{extra}]") or "the core dependencies (the SDK)"
            problems.append(f"{where}: imports {module!r} ({', '.join(dists)}), not declared in {name}")
    return problems


def test_every_extra_named_in_parts_exists() -> None:
    extras = set(project()["optional-dependencies"])
    assert {e for e in (*PARTS.values(), *CLOSURES.values()) if e} <= extras


def test_every_third_party_import_is_declared_in_its_extra() -> None:
    problems = [p for path in python_files() for p in undeclared(path, extra_of(path))]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("prefix", list(CLOSURES))
def test_lighter_entry_points_import_only_their_own_extra(prefix: str) -> None:
    """The SDK (and its tests) reach into segcore and the test helpers: what they import must load without the
    server's packages."""
    start = sorted((ROOT / prefix).rglob("*.py"))
    files = closure(start)
    problems = [p for path in sorted(files) for p in undeclared(path, CLOSURES[prefix], module_level_only=True)]
    assert not problems, "\n".join(problems)
    assert len(files) > len(start), "the closure follows first-party imports"


def test_packages_outside_the_extras_are_installed_by_scripts_test() -> None:
    script = (ROOT / "scripts" / "test").read_text()
    for module, pin in OUTSIDE_EXTRAS.items():
        assert pin in script, f"{module} is imported but neither declared nor installed by scripts/test"


def test_the_server_entry_point_checks_exactly_the_server_extra() -> None:
    from server.extra import SERVER_MODULES

    server_own = {requirement_name(r) for r in project()["optional-dependencies"]["server"]}
    assert {normalize(d) for d in SERVER_MODULES.values()} == server_own
    for module, dist in SERVER_MODULES.items():
        assert normalize(dist) in distributions_of(module), f"{module} is not provided by {dist}"


def test_a_missing_import_is_reported_by_name(tmp_path: Path) -> None:
    """The checker itself: an undeclared import in a server file is named."""
    probe = tmp_path / "probe.py"
    probe.write_text("import requests\nimport numpy\n\ndef f():\n    import six\n")
    assert undeclared(probe, "server") == [
        "probe.py: imports 'requests' (requests), not declared in [server]",
        "probe.py: imports 'six' (six), not declared in [server]",
    ]
    assert undeclared(probe, "dev", module_level_only=True) == []
