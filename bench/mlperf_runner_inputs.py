"""Inputs for MLPerf Tiny's official runner (mlcommons/tiny benchmark/runner) on a tinykd model.

Writes, under --out:
- datasets/<id>/: the test samples in the runner's layout (one raw int8 ``.bin`` per sample,
  ``y_labels.csv``);
- tests_accuracy.yaml and tests_performance.yaml: the runner's test scripts, keyed by the
  name the device reports in ``m-model-[…]`` (``--name``); performance windows of N
  inferences, N sized for 11 s (the rules ask >= 10 s) from the per-inference time
  (``--seconds-per-inference``, e.g. from ``tinykd bench``; default: the board profile's
  latency estimate, what the emulated board reports);
- devices.yaml: one DUT at the board's baud rate (the runner's shim supplies the port).

It prints the host TFLM Top-1 on the same samples: the figure the runner's accuracy mode
must report. tinykd ships no runner code; fetch the runner yourself (see the README).

python bench/mlperf_runner_inputs.py --model runs/digits_kd/student_distilled_int8.tflite \
    --dataset digits --limit 200 --out /tmp/mlperf
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tinykd.boards import load_board  # noqa: E402
from tinykd.data import load_dataset  # noqa: E402
from tinykd.measure.latency_model import operator_work  # noqa: E402
from tinykd.measure.mlperf import (  # noqa: E402
    RUNNER_WINDOWS,
    iterations_for_window,
    write_runner_dataset,
)
from tinykd.measure.tflm import TflmModel  # noqa: E402

WARMUPS = 1


def test_script(name: str, model_id: str, loop: str, infer: str) -> str:
    return (
        f"{name}:\n  name: tinykd_{model_id}\n  model: {model_id}\n  truth_file: y_labels.csv\n"
        f"  script:\n    - {loop}:\n      - download\n      - {infer}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="int8 .tflite the device runs")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--limit", type=int, default=200, help="first N test samples")
    parser.add_argument("--id", default="ic01", help="the runner's dataset folder name")
    parser.add_argument("--name", help="the device's m-model name (default: --id)")
    parser.add_argument("--board", default="emulated", help="board profile (baud, latency)")
    parser.add_argument("--seconds-per-inference", type=float)
    parser.add_argument("--out", default="runs/mlperf")
    args = parser.parse_args()

    tflite = Path(args.model).read_bytes()
    model, board = TflmModel(tflite), load_board(args.board)
    data = load_dataset(args.dataset)
    x, y = data.x_test[: args.limit], data.y_test[: args.limit]
    inputs = model.quantize(x)
    num_classes = int(model.info.output.shape[-1])
    out = Path(args.out)
    write_runner_dataset(out / "datasets" / args.id, inputs, y, num_classes)

    seconds = (
        args.seconds_per_inference or board.estimate_cycles(operator_work(tflite)) / board.cpu_hz
    )
    iterations = iterations_for_window(seconds)
    name = args.name or args.id
    (out / "tests_accuracy.yaml").write_text(test_script(name, args.id, "loop", "infer 1 0"))
    (out / "tests_performance.yaml").write_text(
        test_script(name, args.id, f"loop {RUNNER_WINDOWS}", f"infer {iterations} {WARMUPS}")
    )
    (out / "devices.yaml").write_text(
        f"- name: tinykd_{board.name}\n  type: dut\n  baud: {board.baud}\n  usb:\n    0x0000: 0x0000\n"
    )
    top1 = 100.0 * model.accuracy(x, y)
    print(f"{len(x)} {args.dataset} test samples in {out / 'datasets' / args.id}")
    print(f"host TFLM Top-1 on them: {top1:.1f} % (the runner prints 'Top 1% = {top1:.1f}')")
    print(
        f"performance: {RUNNER_WINDOWS} windows of infer {iterations} {WARMUPS} "
        f"({seconds * 1e3:.3f} ms per inference: {iterations * seconds:.2f} s per window)"
    )


if __name__ == "__main__":
    main()
