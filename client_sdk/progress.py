"""Progress of a command-line job: a tqdm bar on a terminal; plain lines every few seconds otherwise (a log file
gets no carriage returns), and the counts either way."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

LINE_EVERY_S = 10.0


class Progress:
    """Counts done / skipped / failed out of `total` and shows them as the stream allows."""

    def __init__(self, total: int, desc: str, enabled: bool = True, stream: TextIO | None = None,
                 every_s: float = LINE_EVERY_S) -> None:  # fmt: skip
        self.total, self.desc = total, desc
        self.done = self.skipped = self.failed = 0
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self._every = every_s
        self._next_line = self.started + every_s
        terminal = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self._bar = tqdm(total=total, desc=desc, unit="img", file=self.stream) if terminal else None
        self._lines = enabled and not terminal

    def update(self, outcome: str) -> None:
        """One item finished: 'done', 'skipped' or 'failed'."""
        setattr(self, outcome, getattr(self, outcome) + 1)
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(failed=self.failed, refresh=False)
        elif self._lines and time.monotonic() >= self._next_line:
            self._next_line = time.monotonic() + self._every
            self.line(self.describe())

    def line(self, text: str) -> None:
        """A message between progress updates (above the bar on a terminal)."""
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    @property
    def finished(self) -> int:
        return self.done + self.skipped + self.failed

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def describe(self) -> str:
        rate = self.done / self.elapsed if self.elapsed > 0 else 0.0
        return (f"{self.desc}: {self.finished}/{self.total} ({self.done} written, {self.skipped} skipped, "
                f"{self.failed} failed), {rate:.1f} images/s")  # fmt: skip

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
