"""Silence TensorFlow's native (C++) log lines on file descriptor 2.

TensorFlow 2.21 prints oneDNN/CUDA notices through absl before any log level applies, and
the TFLite converter prints its own progress; none of it helps a tinykd user. What was
captured is handed back, so an error message can still show it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile


@contextlib.contextmanager
def quiet_native_stderr():
    """Redirect fd 2 to a temporary file; yields a list that receives the captured text."""
    captured: list[str] = []
    if os.environ.get("TINYKD_VERBOSE_TF"):
        yield captured
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read().decode("utf-8", "replace"))
