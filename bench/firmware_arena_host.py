"""Smallest TFLM arena: the tflite-micro Python package vs the firmware's TFLM runtime.

The exporter measures the arena with the Python interpreter; the firmware compiles
tkd_runtime_tflm.cc against a tflite-micro source tree. This compiles the firmware for the
host (tinykd.firmware.host_firmware) at different TKD_ARENA_SIZE values and bisects, in
16-byte steps, the smallest one whose runtime initialises. Needs a tflite-micro tree:

    TFLM_DIR=<tree> python bench/firmware_arena_host.py [model.tflite]
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tinykd.boards import load_board  # noqa: E402
from tinykd.export import ArenaPlan, Int8Artifact  # noqa: E402
from tinykd.firmware.host_firmware import build_host_firmware  # noqa: E402
from tinykd.firmware.render import render_project  # noqa: E402


def initialises(tflite: bytes, arena: int, work: Path) -> bool:
    """Whether the firmware built with exactly ``arena`` bytes (a multiple of 16) starts."""
    artifact = Int8Artifact(tflite, name="bench", arena=ArenaPlan(arena, 0))
    project = render_project(load_board("emulated"), artifact, work / f"arena-{arena}", kind="host")
    output = subprocess.run(
        [str(build_host_firmware(project))], input=b"tkd-info%", capture_output=True
    ).stdout
    return re.search(rb"m-tkd-runtime-status-\[0\]", output) is not None


def main() -> None:
    path = (
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else ROOT / "tests/firmware/fixtures/digits_ds_cnn.tflite"
    )
    tflite = path.read_bytes()
    python_minimum = Int8Artifact(tflite, name=path.stem).arena.minimum_bytes
    with tempfile.TemporaryDirectory() as work:
        low, high = python_minimum // 32, (python_minimum * 2 + 15) // 16  # 16-byte units
        if not initialises(tflite, high * 16, Path(work)):
            sys.exit(f"even {high * 16} bytes do not work")
        while high - low > 1:  # invariant: low fails (or is untested below), high works
            middle = (low + high) // 2
            low, high = (
                (low, middle) if initialises(tflite, middle * 16, Path(work)) else (middle, high)
            )
    print(f"model                            {path.name} ({len(tflite):,} bytes)")
    print(f"Python interpreter exact minimum {python_minimum:,} bytes (tinykd.export.arena)")
    print(f"host-compiled firmware minimum   {high * 16:,} bytes (16-byte steps)")
    print(f"difference                       {high * 16 / python_minimum - 1:+.1%}")


if __name__ == "__main__":
    main()
