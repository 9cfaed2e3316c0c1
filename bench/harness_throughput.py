"""Harness throughput against the emulated board at 115200 baud-equivalent pacing.

How many input bytes per second reach the device while loading inputs, as a fraction of
the link's byte rate (baud / 10 for 8N1), for the MLPerf Tiny hex path (``db`` commands,
with and without read-back) and tinykd's binary path (``tkd-bulk``, CRC-32).

python bench/harness_throughput.py                       # runs/demo's student, 100 samples
python bench/harness_throughput.py --model m.tflite --dataset digits
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tinykd.measure.devices.host_device import start_emulator_process  # noqa: E402
from tinykd.measure.harness.benchmark import model_from_file  # noqa: E402
from tinykd.measure.harness.runner import (  # noqa: E402
    BoardSession,
    SessionOptions,
    run_benchmark,
)


def wire_bytes_per_load(transport: str, size: int, command_size: int = 80) -> tuple[int, int]:
    """(bytes sent, bytes received) to load one input of ``size`` bytes, by the protocol."""
    if transport == "binary":
        command = len(f"tkd-bulk {size} 01234567%")
        ready = len(f"m-tkd-bulk-ready-[{size}]\r\n")
        return command + size, ready + len("m-load-done\r\nm-ready\r\n")
    per_command = (command_size - 3) // 2
    chunks = -(-size // per_command)
    sent = len(f"db load {size}%") + chunks * len("db %") + 2 * size
    received = len(f"m-[Expecting {size} bytes]\r\nm-ready\r\n") + chunks * len("m-ready\r\n")
    return sent, received + len("m-load-done\r\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/demo", help="run folder (its distilled.tflite)")
    parser.add_argument("--model", help="an int8 .tflite instead of the run's student")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--baud", type=int, default=115200)
    args = parser.parse_args()

    from tinykd.data import load_dataset

    model = model_from_file(args.model or Path(args.run) / "distilled.tflite", "student")
    x = load_dataset(args.dataset).x_test[: args.samples]
    inputs = model.quantized_inputs(x)
    size = model.identity.input_bytes
    process, url = start_emulator_process(model.path, baud=args.baud)
    link_rate = args.baud / 10
    print(
        f"Emulated board paced at {args.baud} baud ({link_rate:,.0f} bytes/s each way); "
        f"{args.samples} samples of {size} input bytes; model {model.name}\n"
    )
    print(
        "| input path | input bytes/s | of the link's byte rate | median per load | "
        "protocol bound | samples/s (whole benchmark) |"
    )
    print("|---|---|---|---|---|---|")
    try:
        paths = (
            ("hex", False, False, "hex (MLPerf Tiny db commands)"),
            ("hex", True, False, "hex + db print read-back"),
            ("binary", False, False, "binary, waiting for m-tkd-bulk-ready"),
            ("binary", False, True, "binary, streamed (default)"),
        )
        for transport, verify, stream, label in paths:
            options = SessionOptions(
                baud=args.baud, transport=transport, verify_hex=verify, stream_bulk=stream
            )
            session = BoardSession(url, model.identity, options)
            run = run_benchmark(session, inputs)
            session.close()
            counts = run.accounting()
            assert counts["answered"] == counts["total"], counts
            link = run.link_throughput()
            loads = [r.load_seconds for r in run.records if r.load_seconds is not None]
            median_fraction = size / statistics.median(loads) / link_rate
            sent, received = wire_bytes_per_load(transport, size)
            # Streamed, the replies travel while the data is still being sent.
            wire = sent + (received if not stream else len("m-load-done\r\nm-ready\r\n"))
            bound = f"{size / wire:.1%}" if not verify else "–"
            print(
                f"| {label} | {link['input_bytes_per_second']:,.0f} | "
                f"{link['fraction_of_link']:.1%} (median load: {median_fraction:.1%}) | "
                f"{1000 * statistics.median(loads):.1f} ms | "
                f"{bound} | {link['samples_per_second']:.2f} |"
            )
    finally:
        process.terminate()
        process.wait()
    print(
        "\nProtocol bound: input bytes / bytes on the wire per load that follow each other "
        "(a command waits for its reply, so both directions count; streamed, only the reply "
        "after the last data byte adds to the bytes sent)."
    )


if __name__ == "__main__":
    main()
