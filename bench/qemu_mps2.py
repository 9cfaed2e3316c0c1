"""The demo student on the emulated Cortex-M4 (QEMU mps2-an386), reference vs CMSIS-NN kernels.

For each TFLM tree given, builds the benchmark firmware (core + mps2 HAL + TFLM + model)
with arm-none-eabi-gcc, runs the first --limit test samples through it in QEMU via the
serial harness, and prints: agreement with the TFLM Python interpreter (sample for
sample), accuracy, instructions per inference (qemu -icount shift=0: instructions, not
cycles), the arena used on the 32-bit device (next to the host (64-bit) minimum), and flash (text + data of the firmware, and the model's share).

    python bench/qemu_mps2.py --run runs/demo --tflm reference=$TFLM_REF --tflm cmsis_nn=$TFLM_CMSIS
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tinykd.boards import load_board  # noqa: E402
from tinykd.commands.bench import load_bench_data  # noqa: E402
from tinykd.export import Int8Artifact  # noqa: E402
from tinykd.firmware.tflm_library import find_tflm_tree  # noqa: E402
from tinykd.measure.qemu_run import run_in_qemu  # noqa: E402
from tinykd.measure.tflm import TflmModel  # noqa: E402
from tinykd.progress import Progress  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="run folder of tinykd demo/run")
    parser.add_argument("--student", default="distilled")
    parser.add_argument(
        "--tflm", action="append", required=True, metavar="LABEL=DIR", help="a TFLM tree"
    )
    parser.add_argument("--limit", type=int, default=1000, help="first N test samples")
    parser.add_argument("--board", default="mps2_an386")
    parser.add_argument("--out", help="also write the figures as JSON here")
    args = parser.parse_args()

    run_dir = Path(args.run)
    tflite = (run_dir / f"{args.student}.tflite").read_bytes()
    progress = Progress()
    data = load_bench_data(run_dir=run_dir, dataset=None, limit=args.limit, progress=progress)
    artifact = Int8Artifact(tflite, name=args.student, labels=data.class_names)
    reference = TflmModel(artifact)
    inputs = reference.quantize(data.x)
    host = reference.predict_int8(data.x).argmax(axis=1)
    board = load_board(args.board)
    print(
        f"{args.student} of {run_dir}: {len(tflite):,}-byte .tflite, {len(inputs):,} test samples"
        f" of {data.name}; TFLM host interpreter accuracy {np.mean(host == data.y):.2%}"
    )
    figures = {}
    for item in args.tflm:
        label, _, folder = item.partition("=")
        tree = find_tflm_tree(folder)
        started = time.monotonic()
        result = run_in_qemu(
            board,
            artifact,
            inputs,
            tflm=tree,
            out_dir=Path("build") / "qemu_bench" / label,
            labels=data.y,
        )
        print(f"\n[{label}] ({time.monotonic() - started:.0f} s)")
        for line in result.lines():
            print(f"  {line}")
        figures[label] = result.as_dict()
    if len(figures) == 2:
        (a, first), (b, second) = figures.items()
        ratio = first["ticks_median"] / second["ticks_median"]
        print(f"\n{a} / {b} instructions per inference: {ratio:.2f}x")
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
