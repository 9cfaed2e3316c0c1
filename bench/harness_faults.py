"""Faults injected between the harness and an emulated board: how every sample ended.

For each scenario of ``tinykd_lab.fault_scenarios`` (link faults, a garbled
``tkd-info`` or ``help%`` reply, a dropped line ending, a reset while reconnecting, a
changed hex input digit, a vanished board) the samples go through a fault-injecting TCP
proxy (127.0.0.1) to an unpaced emulated board, and each sample is counted as answered
correctly (exactly the TFLM host interpreter's int8 outputs), answered wrong, failed with a
reason, or missing. A fail-closed harness has 0 wrong and 0 missing in every row. The
counts go to bench/results/harness_faults.json; the table is built from them.

python bench/harness_faults.py                         # a small digits CNN, 200 samples
python bench/harness_faults.py --model m.tflite --dataset fashion_mnist --samples 500
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_json import RESULTS, write_results  # noqa: E402

from tinykd.measure.devices.host_device import start_emulator_process, stop_process  # noqa: E402
from tinykd.measure.harness.benchmark import model_from_file  # noqa: E402
from tinykd.measure.harness.client import Timeouts  # noqa: E402
from tinykd.measure.harness.runner import SessionOptions  # noqa: E402
from tinykd_lab.fault_scenarios import run_scenario, scenarios  # noqa: E402


def digits_model(folder: Path) -> Path:
    """A plain CNN trained for two epochs on digits, int8 (the tests' model)."""
    from tinykd.compress import convert_int8
    from tinykd.data import load_dataset
    from tinykd.models import build_model
    from tinykd.recipe import Recipe
    from tinykd.training import SplitData, train

    data = load_dataset("digits")
    split = SplitData(
        data.x_train, data.y_train, data.x_test[:0], data.y_test[:0],
        data.x_test, data.y_test, data.class_names, "digits", "sklearn",
    )  # fmt: skip
    model = build_model("plain_cnn", split.input_shape, split.num_classes, seed=0)
    train(model, split, Recipe(epochs=2, batch_size=64, learning_rate=3e-3, seed=0))
    path = folder / "digits_cnn.tflite"
    path.write_bytes(
        convert_int8(model, calibration_images=split.x_train, num_calibration_samples=50)
    )
    return path


def report_table(summary: dict) -> str:
    """The Markdown table the README quotes (built from the JSON, so the two agree)."""
    lines = [
        "| fault injected | answered correctly | answered wrong | failed with reason | "
        "missing | input path |",
        "|---|---|---|---|---|---|",
    ]
    for row in summary["rows"]:
        failed = f"{row['failed']} ({row['reason']})" if row["failed"] else "0"
        lines.append(
            f"| {row['fault']} | {row['correct']} | {row['wrong']} | {failed} | "
            f"{row['missing']} | {row['transport'] or '-'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="int8 .tflite (default: a small digits CNN)")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--output", default=str(RESULTS / "harness_faults.json"))
    args = parser.parse_args()

    from tinykd.data import load_dataset

    with tempfile.TemporaryDirectory() as folder:
        path = Path(args.model) if args.model else digits_model(Path(folder))
        model = model_from_file(path, "student")
        x = load_dataset(args.dataset).x_test[: args.samples]
        model.run_on_host(x)
        inputs = model.quantized_inputs(x)
        options = SessionOptions(
            timeouts=Timeouts(command=1.0, infer=4.0, quiet=0.05),
            reconnect_attempts=4,
            reconnect_wait=0.2,
        )
        process, url = start_emulator_process(model.path, pacing=False)
        print(
            f"{len(inputs)} samples of {args.dataset} through a fault-injecting proxy to an "
            f"unpaced emulated board; model {path.name}\n"
        )
        rows = []
        try:
            for scenario in scenarios(inputs[0].tobytes()):
                outcome = run_scenario(
                    scenario, url, process, model.identity, inputs, model.host_outputs, options
                )
                rows.append(
                    {
                        "fault": scenario.name,
                        "correct": outcome.correct,
                        "wrong": outcome.wrong,
                        "failed": outcome.failed,
                        "reason": outcome.reasons[0].split(":")[0] if outcome.reasons else "",
                        "missing": outcome.missing,
                        "transport": outcome.transport,
                    }
                )
                print(f"{scenario.name}: {rows[-1]}", flush=True)
        finally:
            stop_process(process)
    figures = {"dataset": args.dataset, "samples": len(inputs), "model": path.name, "rows": rows}
    print()
    print(report_table(write_results(args.output, figures)))


if __name__ == "__main__":
    main()
