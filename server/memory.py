"""Resident memory of a process (Linux /proc), for /metrics and the model description."""

from __future__ import annotations

import os
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes(pid: int | None) -> int | None:
    """Resident set size of `pid` in bytes; None when unknown (no such process, or no /proc)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return None
    return int(fields[1]) * _PAGE
