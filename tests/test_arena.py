"""The arena search finds TFLM's true minimum: that size works and one byte less fails.

The check is independent of ``tinykd.export.arena``: each size is tried by a fresh Python
process that loads the model straight into the ``tflite-micro`` interpreter and invokes it
once (a subprocess, since a far-too-small arena can crash the interpreter).
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tinykd.export.arena import measure_arena

TRY_ARENA = """
import sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime
interpreter = runtime.Interpreter.from_bytes(open(sys.argv[1], "rb").read(), arena_size=int(sys.argv[2]))
details = interpreter.get_input_details(0)
interpreter.set_input(np.zeros(details["shape"], dtype=details["dtype"]), 0)
interpreter.invoke()
print("INVOKED")
"""


def tflm_runs_in(tflite_path, arena_size: int) -> bool:
    result = subprocess.run(
        [sys.executable, "-c", TRY_ARENA, str(tflite_path), str(arena_size)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.returncode == 0 and "INVOKED" in result.stdout


@pytest.fixture(scope="module")
def default_architectures(tmp_path_factory):
    """The demo's student and teacher (untrained: the arena depends on shapes, not weights),
    converted to int8 by the project's converter; {name: .tflite path}."""
    from tinykd.compress import convert_int8
    from tinykd.config import RunConfig
    from tinykd.models import build_model

    defaults = RunConfig()
    calibration = np.random.default_rng(0).random((32, 28, 28, 1), dtype=np.float32)
    folder = tmp_path_factory.mktemp("arena")
    paths = {}
    for name in (defaults.student.model, defaults.teacher.model):
        model = build_model(name, (28, 28, 1), 10, seed=0)
        tflite = convert_int8(model, calibration_images=calibration, num_calibration_samples=16)
        paths[name] = folder / f"{name}.tflite"
        paths[name].write_bytes(tflite)
    return paths


@pytest.mark.parametrize("role", ["student", "teacher"])
def test_measured_arena_is_the_true_minimum_of_the_default_models(default_architectures, role):
    from tinykd.config import RunConfig

    name = getattr(RunConfig(), role).model
    path = default_architectures[name]
    minimum = measure_arena(path.read_bytes())
    assert tflm_runs_in(path, minimum)
    assert not tflm_runs_in(path, minimum - 1)


def test_measured_arena_is_the_true_minimum_when_the_reported_total_is_too_small(
    tiny_int8_model, tmp_path
):
    """The digits CNN needs more than TFLM's recording allocator reports (search upwards)."""
    _, tflite = tiny_int8_model
    path = tmp_path / "digits.tflite"
    path.write_bytes(tflite)
    minimum = measure_arena(tflite)
    assert tflm_runs_in(path, minimum)
    assert not tflm_runs_in(path, minimum - 1)
