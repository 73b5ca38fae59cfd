"""A one-line progress indicator, shown only when standard output is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """``Progress("simulating x", unit="msg", total=None)``; call ``update(done)``, ``close()``.

    Redraws at most ten times a second, erases itself on close, and does nothing at all
    unless standard output is a terminal: output sent to a file, a pipe or a CI log
    stays clean. It draws on stderr when that is a terminal too (so it never mixes with
    the data on stdout), else on the stdout terminal itself; ``stream`` overrides both.
    """

    def __init__(self, label: str, *, unit: str, total: int | None = None,
                 stream: TextIO | None = None, enabled: bool | None = None) -> None:
        if stream is None:
            stream = sys.stderr if sys.stderr.isatty() else sys.stdout
            interactive = sys.stdout.isatty()
        else:
            interactive = stream.isatty()
        self.stream = stream
        self.enabled = interactive if enabled is None else enabled
        self.label = label
        self.unit = unit
        self.total = total
        self.started = time.monotonic()
        self.last_draw = 0.0
        self.width = 0
        if self.enabled:
            self._draw(0)

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last_draw >= 0.1 or (self.total is not None and done >= self.total):
            self._draw(done)

    def _draw(self, done: int) -> None:
        self.last_draw = time.monotonic()
        elapsed = max(self.last_draw - self.started, 1e-9)
        per_second = done / elapsed
        if not done:
            rate = ""
        elif per_second >= 1:
            rate = f"{per_second:,.0f} {self.unit}/s"
        else:  # slow units (a sweep's runs): "0 run/s" says nothing
            rate = f"{elapsed / done:,.1f} s/{self.unit}"
        if done and self.total and done < self.total:
            rate += f", about {(self.total - done) / per_second:,.0f} s left"
        if self.total:
            share = min(done / self.total, 1.0)
            filled = int(share * 24)
            bar = "#" * filled + "-" * (24 - filled)
            text = f"{self.label} [{bar}] {done:,}/{self.total:,} {self.unit} {rate}"
        else:
            text = f"{self.label}: {done:,} {self.unit} {rate}"
        self.width = max(self.width, len(text))
        self.stream.write("\r" + text.ljust(self.width))
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
