"""All-or-nothing output directories: build in hidden temp dirs beside the targets, then rename into place."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from convert.loader import ConvertError


@contextlib.contextmanager
def staged_dirs(*targets: Path) -> Iterator[list[Path]]:
    """Yield empty temp dirs, one per target; on success they replace the targets, on failure vanish."""
    staged: list[Path] = []
    try:
        for target in targets:
            target = Path(target).absolute()
            if target.exists() and not target.is_dir():
                raise ConvertError(f"output path {target} exists and is not a directory")
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
            tmp.chmod(0o777 & ~_umask())  # mkdtemp makes 0700; the result should look like any new dir
            staged.append(tmp)
        yield staged
        for tmp, target in zip(staged, targets, strict=True):
            _replace(tmp, Path(target).absolute())
    finally:
        for tmp in staged:
            shutil.rmtree(tmp, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _replace(tmp: Path, target: Path) -> None:
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        target.rename(old / target.name)
    try:
        tmp.rename(target)
    except OSError:
        if old is not None:
            (old / target.name).rename(target)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
