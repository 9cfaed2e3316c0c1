"""The exact tensor arena a model needs in TFLM, measured, never guessed.

TFLM's recording allocator reports "Arena allocation total": the smallest arena that
works (one byte less fails). Its ``print_allocations`` writes to file descriptor 2, and a
far-too-small arena can crash the interpreter, so every trial runs in a subprocess.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile

from tinykd.errors import TinyKDError

_ALLOCATION_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")

_PROBE = r"""
import sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime
path, arena = sys.argv[1], int(sys.argv[2])
interpreter = runtime.Interpreter.from_file(path, arena_size=arena or None)
details = interpreter.get_input_details(0)
interpreter.set_input(np.zeros(details["shape"], dtype=details["dtype"]), 0)
interpreter.invoke()
if len(sys.argv) > 3:
    interpreter.print_allocations()
print("TINYKD_ARENA_OK")
"""


def _run_probe(tflite: bytes, arena_size: int, report: bool) -> subprocess.CompletedProcess:
    with tempfile.NamedTemporaryFile(suffix=".tflite", delete=False) as handle:
        handle.write(tflite)
        path = handle.name
    try:
        arguments = [sys.executable, "-c", _PROBE, path, str(arena_size)] + (["report"] if report else [])
        return subprocess.run(
            arguments, capture_output=True, text=True, timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        )
    finally:
        os.unlink(path)


def measure_arena(tflite: bytes) -> int:
    """TFLM's reported minimum arena for this model, in bytes."""
    result = _run_probe(tflite, 0, report=True)
    match = _ALLOCATION_TOTAL.search(result.stdout + result.stderr)
    if result.returncode != 0 or match is None:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise TinyKDError("TFLM could not allocate the model: " + " | ".join(tail))
    return int(match.group(1))


def arena_allocates(tflite: bytes, arena_size: int) -> bool:
    """Whether TFLM can allocate and invoke the model in an arena of exactly ``arena_size`` bytes."""
    result = _run_probe(tflite, arena_size, report=False)
    return result.returncode == 0 and "TINYKD_ARENA_OK" in result.stdout


def arena_with_margin(measured: int, margin_bytes: int = 0) -> int:
    """Measured minimum plus a margin, rounded up to 16 bytes (the firmware's arena size)."""
    total = measured + max(0, margin_bytes)
    return (total + 15) // 16 * 16
