"""The `segserving` command: --version, every verb's --help with examples, the verbs reaching their modules, and
a usage message without a verb. (segment and id-photo at work: tests/client_sdk/test_sdk_cli.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from helpers import child_env

ROOT = Path(__file__).resolve().parents[2]


def segserving(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "segserving", *args], cwd=ROOT, env=child_env(), capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip


def test_the_console_script_is_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"segserving": "segserving.cli:main"}


def test_version() -> None:
    proc = segserving("--version")
    assert proc.returncode == 0 and proc.stdout.strip().startswith("segserving "), proc.stderr


@pytest.mark.parametrize("verb", ["serve", "convert", "segment", "id-photo", "bulk"])
def test_every_verb_has_help_with_examples(verb: str) -> None:
    proc = segserving(verb, "--help")
    assert proc.returncode == 0, proc.stderr
    assert f"usage: segserving {verb}" in proc.stdout and "examples:" in proc.stdout
    assert f"segserving {verb} " in proc.stdout.split("examples:")[1]  # the examples name the command as typed


def test_bench_lists_its_commands_with_examples() -> None:
    proc = segserving("bench", "--help")
    assert proc.returncode == 0 and "usage: segserving bench COMMAND" in proc.stderr and "examples:" in proc.stderr


def test_serve_check_and_a_refused_flag_reach_the_server_module() -> None:
    check = segserving("serve", "check")
    assert check.returncode == 0 and "onnxruntime" in check.stdout, check.stderr
    refused = segserving("serve", "--use_encryption_model")
    assert refused.returncode == 1 and refused.stderr.strip().startswith("error: --use_encryption_model")


def test_no_verb_or_an_unknown_one_shows_the_verbs() -> None:
    nothing = segserving()
    assert nothing.returncode == 2 and "verbs:" in nothing.stderr and "segserving segment photos/" in nothing.stderr
    unknown = segserving("predict")
    assert unknown.returncode == 2 and "invalid choice: 'predict'" in unknown.stderr
