"""The demo student on the emulated board over the whole Fashion-MNIST test set, teacher beside it.

Runs ``tinykd bench --run runs/demo --emulate`` (the firmware core on the host behind a
socket, TFLM behind its inference seam, latency from the board profile's model) and prints
the figures the README quotes. The link is unpaced by default: at 115200 baud the 10,000
samples of each model would take about 20 minutes of serial time and change no figure but
the wall time (bench/harness_throughput.py measures the paced link).

python bench/emulated_board.py                  # runs/demo, 10,000 samples, teacher too
python bench/emulated_board.py --limit 500      # a quicker look
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tinykd.cli import main as tinykd  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/demo")
    parser.add_argument("--limit", type=int, help="first N test samples (default: all)")
    parser.add_argument("--paced", action="store_true", help="pace the link at 115200 baud")
    parser.add_argument("--out", default="runs/bench-emulated")
    args = parser.parse_args()

    arguments = ["bench", "--run", args.run, "--emulate", "--out", args.out]
    arguments += [] if args.paced else ["--no-pacing"]
    arguments += ["--limit", str(args.limit)] if args.limit else []
    started = time.monotonic()
    status = tinykd(arguments)
    seconds = time.monotonic() - started
    report = json.loads((Path(args.out) / "report.json").read_text())

    print(
        f"\n{report['dataset']['name']}: {report['dataset']['samples']:,} test samples, "
        f"board '{report['board']['name']}' ({seconds / 60:.1f} min)\n"
    )
    print(
        "| model | host int8 (TFLM) | on the emulated board | agreement with host | "
        "latency median / p90 / p99 (estimated) | arena used | SRAM / flash (estimated) |"
    )
    print("|---|---|---|---|---|---|---|")
    for model in report["models"]:
        device = model.get("device")
        host = f"{model['host']['accuracy']:.2%}"
        if device:
            latency = device["latency"]
            memory = device["memory"]
            samples = device["samples"]
            print(
                f"| {model['name']} | {host} | {device['accuracy']:.2%} "
                f"({samples['answered']:,}/{samples['total']:,} answered, {samples['failed']} failed) | "
                f"{device['agreement_exact']:.2%} | {latency['median_ms']:.2f} / "
                f"{latency['p90_ms']:.2f} / {latency['p99_ms']:.2f} ms | "
                f"{memory['arena_used_bytes']:,} B | {memory['sram_bytes']:,} / "
                f"{memory['flash_bytes']:,} B |"
            )
        else:
            print(f"| {model['name']} | {host} | {model['device_note']} | | | | |")
    sys.exit(status)


if __name__ == "__main__":
    main()
