"""The malloc tuning, observed through glibc's own counters in fresh processes."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import ROOT, child_env

# Prints how many mmapped chunks a 1 MiB buffer adds (glibc's mallinfo2().hblks), after tune_malloc's verdict.
PROBE = """
import ctypes, sys
from segcore.allocator import tune_malloc
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
applied = tune_malloc() if sys.argv[1] == "tune" else None
before = libc.mallinfo2().hblks
buffer = bytearray(2**20)
print(applied, libc.mallinfo2().hblks - before)
"""


def _probe(mode: str, **env: str) -> str:
    proc = subprocess.run([sys.executable, "-c", PROBE, mode], cwd=ROOT, env={**child_env(), **env},
                          capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
    return proc.stdout.strip()


@pytest.fixture(scope="module", autouse=True)
def _glibc() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallinfo2  # noqa: B018
    except (OSError, AttributeError):
        pytest.skip("not glibc >= 2.33")


def test_large_buffers_come_from_the_heap_once_tuned() -> None:
    assert _probe("plain") == "None 1"  # glibc's default: a fresh mmap for 1 MiB
    assert _probe("tune") == "True 0"


def test_tuning_can_be_switched_off() -> None:
    assert _probe("tune", SEGSERVING_MALLOC_TUNING="0") == "False 1"
