"""The smallest tensor arena a model needs in TFLM, measured, never guessed.

TFLM's recording allocator reports "Arena allocation total". That is close to the smallest
arena that works, but not equal to it, and the error goes both ways: the tinykd-built CNNs
need 8 bytes less than reported (alignment slack counted in the total), and a digits CNN
needs more (2,688 reported, 2,784 needed: the memory planner's temporary buffers must also
fit while tensors are allocated). So the reported total is only the starting point of a
search in both directions for the smallest arena that allocates and invokes; the answer is
checked by confirming that one byte less fails.

The interpreter is the ``tflite-micro`` Python package compiled for this (64-bit) host: its
tensor structures hold 8-byte pointers, so the figure is an upper bound of what a 32-bit
board needs with the same TFLM version (:mod:`tinykd.export.artifact` states it so).

``print_allocations`` writes to file descriptor 2 and a far-too-small arena can crash the
interpreter, so all of this runs in a subprocess, and each trial of the search in a fork
of it: a trial that crashes counts as a failure instead of ending the search.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile

from tinykd.errors import TinyKDError

_ALLOCATION_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")
FIRST_STEP_DOWN = 8  # the search below the reported total starts with this step (then doubles)

_PROBE = r"""
import os
import sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime
path, arena, mode, first_step = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
model = open(path, "rb").read()

def load_and_invoke(size):
    interpreter = runtime.Interpreter.from_bytes(model, arena_size=size or None)
    details = interpreter.get_input_details(0)
    interpreter.set_input(np.zeros(details["shape"], dtype=details["dtype"]), 0)
    interpreter.invoke()
    return interpreter

def works(size):
    # One trial in a forked child: a crash of the interpreter is a failed trial.
    if size <= 0:
        return False
    sys.stdout.flush()
    child = os.fork()
    if child == 0:
        try:
            load_and_invoke(size)
        except BaseException:
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(child, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0

if mode == "report":
    load_and_invoke(0).print_allocations()
elif mode == "search":  # smallest working size, searched both ways from the reported total
    if works(arena):
        high, step = arena, first_step
        while works(high - step):
            high, step = high - step, step * 2
        low = max(0, high - step)
    else:
        low, high = arena, arena * 2
        while not works(high):
            low, high = high, high * 2
    while high - low > 1:  # works(high) and not works(low)
        middle = (low + high) // 2
        if works(middle):
            high = middle
        else:
            low = middle
    if works(high - 1) or not works(high):
        sys.exit("the arena search did not converge")
    print("TINYKD_ARENA_MIN", high)
elif works(arena):
    print("TINYKD_ARENA_OK")
"""


def _run_probe(tflite: bytes, arena_size: int, mode: str) -> subprocess.CompletedProcess:
    with tempfile.NamedTemporaryFile(suffix=".tflite", delete=False) as handle:
        handle.write(tflite)
        path = handle.name
    try:
        arguments = [
            sys.executable,
            "-c",
            _PROBE,
            path,
            str(arena_size),
            mode,
            str(FIRST_STEP_DOWN),
        ]
        return subprocess.run(
            arguments,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
    finally:
        os.unlink(path)


def _failure(result: subprocess.CompletedProcess) -> TinyKDError:
    tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
    return TinyKDError("TFLM could not allocate the model: " + " | ".join(tail))


def reported_arena(tflite: bytes) -> int:
    """TFLM's "Arena allocation total" for this model (the start of the search, not its end)."""
    result = _run_probe(tflite, 0, "report")
    match = _ALLOCATION_TOTAL.search(result.stdout + result.stderr)
    if result.returncode != 0 or match is None:
        raise _failure(result)
    return int(match.group(1))


def measure_arena(tflite: bytes) -> int:
    """The smallest arena, in bytes, in which the host TFLM interpreter allocates and invokes
    this model (one byte less fails)."""
    result = _run_probe(tflite, reported_arena(tflite), "search")
    match = re.search(r"TINYKD_ARENA_MIN (\d+)", result.stdout)
    if result.returncode != 0 or match is None:
        raise _failure(result)
    return int(match.group(1))


def arena_allocates(tflite: bytes, arena_size: int) -> bool:
    """Whether TFLM can allocate and invoke the model in an arena of exactly ``arena_size`` bytes."""
    result = _run_probe(tflite, arena_size, "check")
    return result.returncode == 0 and "TINYKD_ARENA_OK" in result.stdout
