"""A progress bar for benchmarks: in place on a terminal, a line every 10 % elsewhere."""

from __future__ import annotations

import sys
import threading
import time

_LOCK = threading.Lock()  # several workers may print to one terminal


class ProgressBar:
    """Call with ``(done, total, record)`` after each sample; shows rate, failures and ETA."""

    def __init__(self, label: str, stream=None, *, in_place: bool | None = None, width: int = 28):
        self.label, self.width = label, width
        self.stream = stream or sys.stderr
        self.in_place = self.stream.isatty() if in_place is None else in_place
        self.started = time.monotonic()
        self.failed = 0
        self._last_draw = 0.0
        self._last_decile = -1

    def __call__(self, done: int, total: int, record=None) -> None:
        if record is not None and record.status == "failed":
            self.failed += 1
        now = time.monotonic()
        finished = done == total
        if self.in_place:
            if not finished and now - self._last_draw < 0.2:
                return
        else:
            decile = 10 * done // max(total, 1)
            if decile == self._last_decile and not finished:
                return
            self._last_decile = decile
        self._last_draw = now
        elapsed = now - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else 0.0
        filled = int(self.width * done / max(total, 1))
        bar = "#" * filled + "." * (self.width - filled)
        text = (
            f"{self.label} [{bar}] {done}/{total}  {rate:.1f}/s  "
            f"failed {self.failed}  {'done' if finished else f'eta {eta:.0f}s'}"
        )
        with _LOCK:
            if self.in_place:
                self.stream.write("\r" + text + ("\n" if finished else ""))
            else:
                self.stream.write(text + "\n")
            self.stream.flush()
