"""End to end without hardware: emulated board → ``tinykd bench`` → report, through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from harness_settings import FAST, SAMPLES

from tinykd.boards import load_board
from tinykd.measure.devices.emulator import ANNOUNCEMENT
from tinykd.measure.devices.host_device import start_emulator_process
from tinykd.measure.harness.runner import BoardSession, SessionOptions, run_benchmark
from tinykd.measure.latency_model import operator_work


def _tinykd(*arguments, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "tinykd.cli", *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_bench_on_emulated_boards_writes_the_whole_report(model_path, bench_model, tmp_path):
    out = tmp_path / "bench"
    result = _tinykd(
        "bench",
        "--model", str(model_path),
        "--teacher", str(model_path),
        "--dataset", "digits",
        "--limit", str(SAMPLES),
        "--emulate",
        "--no-pacing",
        "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert f"{SAMPLES}/{SAMPLES}" in result.stderr  # the progress bar's last line
    expected_files = {
        "report.json",
        "report.md",
        "report.html",
        "tradeoff.png",
        "confusion-student.png",
        "confusion-teacher.png",
        "samples-student.csv",
        "samples-teacher.csv",
    }
    assert expected_files <= {path.name for path in out.iterdir()}
    for name in ("tradeoff.png", "confusion-student.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    report = json.loads((out / "report.json").read_text())
    student, teacher = report["models"]
    labels = np.asarray(bench_model.host_outputs).argmax(axis=1)
    host_accuracy = float(np.mean(labels == _labels()))
    for section in (student, teacher):
        device = section["device"]
        samples = device["samples"]
        assert samples["answered"] == samples["total"] == SAMPLES and samples["failed"] == 0
        assert device["accuracy"] == section["host"]["accuracy"] == host_accuracy
        assert device["agreement_exact"] == 1.0
        assert device["device"]["tkd"]["hash"] == section["hash"]
        # The emulated clock: exactly the latency model's cycles, labelled as an estimate.
        board = load_board("emulated")
        cycles = round(board.estimate_cycles(operator_work(bench_model.tflite)))
        latency = device["latency"]
        assert latency["estimated"] is True and latency["unit"] == "est-cycles"
        assert latency["median_ticks"] == cycles == section["estimate"]["cycles"]
        assert latency["median_ms"] == latency["p99_ms"] == 1000 * cycles / board.cpu_hz
        assert device["memory"]["arena_used_bytes"] > 0
        assert sum(map(sum, device["confusion_matrix"])) == SAMPLES
    assert report["board"]["name"] == "emulated"

    markdown = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for text in (
        f"{host_accuracy:.2%}",
        "100.00% exact",
        "(estimated)",
        "Every sample was answered",
        "input path binary because the device lists tkd-bulk in help% (two identical replies)",
        "device identity: model hash",
    ):
        assert text in markdown and text in html
    rows = (out / "samples-student.csv").read_text().splitlines()
    assert len(rows) == SAMPLES + 1 and rows[0].startswith("index,status,attempts")


def _labels():
    from tinykd.data import load_dataset

    return load_dataset("digits").y_test[:SAMPLES]


def test_emulate_over_a_pty_is_the_same_code_path(model_path, bench_model, samples):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tinykd.cli",
            "emulate",
            "--model",
            str(model_path),
            "--pty",
            "--no-pacing",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        path = None
        for line in process.stdout:
            if line.startswith(ANNOUNCEMENT):
                path = line[len(ANNOUNCEMENT) :].strip()
                break
        assert path and path.startswith("/dev/pts/")
        session = BoardSession(path, bench_model.identity, FAST)
        run = run_benchmark(session, bench_model.quantized_inputs(samples[0][:20]))
        session.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert run.accounting()["answered"] == 20
    np.testing.assert_array_equal(run.outputs(10), bench_model.host_outputs[:20])


def test_paced_link_is_never_faster_than_the_baud_rate(model_path, bench_model, samples):
    """At 115200 baud the input can move at most 11,520 bytes/s; binary beats hex."""
    process, url = start_emulator_process(model_path, baud=115200)
    figures = {}
    try:
        for transport in ("binary", "hex"):
            options = SessionOptions(**{**FAST.__dict__, "transport": transport})
            session = BoardSession(url, bench_model.identity, options)
            run = run_benchmark(session, bench_model.quantized_inputs(samples[0][:12]))
            session.close()
            assert run.accounting()["answered"] == 12
            figures[transport] = run.link_throughput()["fraction_of_link"]
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert 0 < figures["hex"] < figures["binary"] <= 1.0, figures


def test_two_ports_are_benchmarked_by_two_workers(model_path, tmp_path):
    boards = [start_emulator_process(model_path, pacing=False) for _ in range(2)]
    try:
        out = tmp_path / "all"
        arguments = ["bench", "--model", str(model_path), "--dataset", "digits", "--limit", "20"]
        for _, url in boards:
            arguments += ["--port", url]
        result = _tinykd(*arguments, "--out", str(out), "--no-plots")
    finally:
        for process, _ in boards:
            process.terminate()
            process.wait(timeout=30)
    assert result.returncode == 0, result.stderr[-2000:]
    reports = sorted(out.glob("*/report.json"))
    assert len(reports) == 2
    for path in reports:
        report = json.loads(path.read_text())
        assert report["models"][0]["device"]["samples"]["answered"] == 20
        assert path.parent.name.startswith("emulated-socket_127.0.0.1_")


def test_user_errors_are_one_line(model_path, tmp_path):
    nothing = _tinykd(
        "bench", "--model", str(model_path), "--dataset", "digits", "--limit", "5",
        "--port", "socket://127.0.0.1:9", "--out", str(tmp_path / "x"),
    )  # fmt: skip
    assert nothing.returncode == 2 and "Traceback" not in nothing.stderr
    assert "error: Cannot open socket://127.0.0.1:9" in nothing.stderr
    listing = _tinykd("boards")
    assert listing.returncode == 0 and "nano33ble" in listing.stdout
    assert "\nAttached" in listing.stdout
