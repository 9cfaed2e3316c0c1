"""The exact tensor arena a model needs in TFLM, measured, never guessed.

TFLM's recording allocator reports "Arena allocation total". For most models that is the
smallest arena that works, but not for all: the memory planner's temporary buffers must
also fit while tensors are allocated, and on small models they need more than the final
plan (seen here: a digits CNN reported 2,688 bytes and needed 2,784). So the reported
total is only the starting point of a byte-exact search for the smallest arena that
allocates and invokes. ``print_allocations`` writes to file descriptor 2 and a far-too-small
arena can crash the interpreter, so all of this runs in subprocesses.
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
path, arena, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
model = open(path, "rb").read()

def works(size):
    try:
        interpreter = runtime.Interpreter.from_bytes(model, arena_size=size or None)
        details = interpreter.get_input_details(0)
        interpreter.set_input(np.zeros(details["shape"], dtype=details["dtype"]), 0)
        interpreter.invoke()
    except RuntimeError:
        return None
    return interpreter

if mode == "report":
    works(0).print_allocations()
elif mode == "search":  # smallest working size at or above the reported total
    low, high = arena - 1, arena
    while works(high) is None:
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        if works(middle) is None:
            low = middle
        else:
            high = middle
    print("TINYKD_ARENA_MIN", high)
elif works(arena) is not None:
    print("TINYKD_ARENA_OK")
"""


def _run_probe(tflite: bytes, arena_size: int, mode: str) -> subprocess.CompletedProcess:
    with tempfile.NamedTemporaryFile(suffix=".tflite", delete=False) as handle:
        handle.write(tflite)
        path = handle.name
    try:
        arguments = [sys.executable, "-c", _PROBE, path, str(arena_size), mode]
        return subprocess.run(
            arguments,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
    finally:
        os.unlink(path)


def _failure(result: subprocess.CompletedProcess) -> TinyKDError:
    tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
    return TinyKDError("TFLM could not allocate the model: " + " | ".join(tail))


def reported_arena(tflite: bytes) -> int:
    """TFLM's "Arena allocation total" for this model (a lower bound of the real minimum)."""
    result = _run_probe(tflite, 0, "report")
    match = _ALLOCATION_TOTAL.search(result.stdout + result.stderr)
    if result.returncode != 0 or match is None:
        raise _failure(result)
    return int(match.group(1))


def measure_arena(tflite: bytes) -> int:
    """The smallest arena, in bytes, in which TFLM allocates and invokes this model."""
    result = _run_probe(tflite, reported_arena(tflite), "search")
    match = re.search(r"TINYKD_ARENA_MIN (\d+)", result.stdout)
    if result.returncode != 0 or match is None:
        raise _failure(result)
    return int(match.group(1))


def arena_allocates(tflite: bytes, arena_size: int) -> bool:
    """Whether TFLM can allocate and invoke the model in an arena of exactly ``arena_size`` bytes."""
    result = _run_probe(tflite, arena_size, "check")
    return result.returncode == 0 and "TINYKD_ARENA_OK" in result.stdout


def arena_with_margin(measured: int, margin_bytes: int = 0) -> int:
    """Measured minimum plus a margin, rounded up to 16 bytes (the firmware's arena size)."""
    total = measured + max(0, margin_bytes)
    return (total + 15) // 16 * 16
