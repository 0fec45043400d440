"""`@FILE` arguments: flags kept in a file (a Kubernetes ConfigMap, a compose config), shell-quoted, `#` comments."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

MAX_BYTES = 1 << 20  # a flag file is a few lines; anything larger is the wrong file


class FlagFileError(ValueError):
    """A flag file that cannot be read or parsed; the message names the file and the problem."""


def read_flags(path: Path) -> list[str]:
    """The arguments in `path`: each line split as a POSIX shell would, blank lines and `#` comments skipped."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise FlagFileError(f"flag file @{path}: cannot read it ({exc.__class__.__name__})") from None
    if len(data) > MAX_BYTES:
        raise FlagFileError(f"flag file @{path}: larger than {MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise FlagFileError(f"flag file @{path}: not UTF-8 text") from None
    flags: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            raise FlagFileError(f"flag file @{path} line {number}: {exc}") from None
        if any(word.startswith("@") for word in words):
            raise FlagFileError(f"flag file @{path} line {number}: flag files do not nest")
        flags += words
    return flags


def expand(args: Sequence[str]) -> list[str]:
    """`args` with every `@FILE` replaced, in place, by the flags in FILE (later flags win, as on a command line)."""
    expanded: list[str] = []
    for arg in args:
        expanded += read_flags(Path(arg[1:])) if arg.startswith("@") and len(arg) > 1 else [arg]
    return expanded
