"""The harness's pieces against values computed by hand or by an independent tool."""

from __future__ import annotations

import io
import shutil
import subprocess
from types import SimpleNamespace

import numpy as np
import pytest

from tinykd.boards import load_board
from tinykd.firmware.discovery import attached_boards, print_attached_boards
from tinykd.firmware.elf_sizes import elf_sizes
from tinykd.measure.harness.client import ProtocolError, _numbers
from tinykd.measure.harness.metrics import (
    classification_metrics,
    confusion_matrix,
    latency_summary,
)
from tinykd.measure.harness.progress_bar import ProgressBar
from tinykd.measure.harness.protocol import Reply
from tinykd.measure.harness.report import render_html, render_markdown
from tinykd.measure.latency_model import operator_work
from tinykd.models.profile import count_macs


def test_operator_work_matches_the_keras_mac_count(tiny_int8_model):
    """MACs read from the .tflite's tensor shapes equal those counted on the Keras layers."""
    model, tflite = tiny_int8_model
    work = operator_work(tflite)
    macs = sum(work.get(op, 0) for op in ("conv_2d", "depthwise_conv_2d", "fully_connected"))
    assert macs == count_macs(model) > 0
    assert work.get("reshape", 0) == 0


def test_latency_estimate_by_hand():
    board = load_board("nucleo_l4r5zi")  # conv_2d 7, fully_connected 6, default 9 cycles
    work = {"conv_2d": 1000, "fully_connected": 100, "max_pool_2d": 10}
    assert board.estimate_cycles(work) == 1000 * 7 + 100 * 6 + 10 * 9


def test_elf_sizes_agree_with_binutils_size(tmp_path):
    if not (shutil.which("gcc") and shutil.which("size")):
        pytest.skip("needs gcc and binutils' size")
    source = tmp_path / "sizes.c"
    source.write_text(
        'int initialised[100] = {1};\nchar zeroed[5000];\nconst char text[] = "abc";\n'
        "int main(void) { return initialised[0] + zeroed[1] + text[0]; }\n"
    )
    binary = tmp_path / "sizes"
    subprocess.run(["gcc", "-O0", str(source), "-o", str(binary)], check=True)
    berkeley = subprocess.run(["size", "-B", str(binary)], capture_output=True, text=True).stdout
    text, data, bss = (int(value) for value in berkeley.splitlines()[1].split()[:3])
    sizes = elf_sizes(binary)
    assert (sizes.text, sizes.data, sizes.bss) == (text, data, bss)
    assert sizes.static_ram_bytes == data + bss >= 5400


def test_fit_summary_by_hand(bench_model):
    from tinykd.export.fit import check_fit
    from tinykd.measure.harness.benchmark import fit_summary

    # nano33ble: 196,608 bytes SRAM and 874,496 (1,048,576 − 174,080) bytes flash usable.
    board = load_board("nano33ble")
    # SRAM: arena + input + core 512 + stack margin 2,048; flash: model + TFLM runtime
    # 44,181 (no operators given) + core 8,192.
    assert fit_summary(check_fit(board, model_bytes=1000, arena_bytes=2000, input_bytes=64)) == (
        "fits nano33ble: 4,624 of 196,608 bytes SRAM, 53,373 of 874,496 bytes flash (estimated)"
    )
    too_big = check_fit(board, model_bytes=900_000, arena_bytes=300_000, input_bytes=784)
    assert fit_summary(too_big) == (
        "does not fit nano33ble: needs 303,344 bytes SRAM (has 196,608 usable) "
        "and 952,373 bytes flash (has 874,496 usable)"
    )


def test_latency_percentiles_by_hand():
    summary = latency_summary([i / 1000 for i in range(1, 101)])  # 1..100 ms
    assert summary["median_ms"] == pytest.approx(50.5)
    assert summary["p90_ms"] == pytest.approx(90.1)  # linear interpolation: 90 + 0.1
    assert summary["p99_ms"] == pytest.approx(99.01)
    assert latency_summary([]) == {"samples": 0}


def test_classification_metrics_by_hand():
    device = np.array([[9, 0], [0, 9], [9, 0], [0, 5]], dtype=np.int8)
    host = np.array([[9, 0], [0, 9], [0, 9], [0, 4]], dtype=np.int8)
    labels = np.array([0, 1, 1, 1])
    answered = np.array([True, True, True, False])
    metrics = classification_metrics(device, answered, labels, host)
    assert metrics["answered"] == 3
    assert metrics["accuracy"] == pytest.approx(2 / 3)
    assert metrics["accuracy_counting_failed_as_wrong"] == pytest.approx(2 / 4)
    assert metrics["host_accuracy_same_samples"] == 1.0
    assert metrics["agreement_exact"] == metrics["agreement_class"] == pytest.approx(2 / 3)
    assert metrics["max_abs_output_difference"] == 9
    assert confusion_matrix(np.array([0, 1, 0]), np.array([0, 1, 1]), 2).tolist() == [
        [1, 0],
        [1, 1],
    ]


def test_garbled_replies_are_protocol_errors():
    reply = Reply(("m-results-[0.500,-1.250]", "m-tkd-output-[80ff7f]"))
    assert _numbers(reply.results, 2, "m-results") == [0.5, -1.25]
    assert _numbers(reply.int8_output, 3, "tkd-output") == [-128, -1, 127]
    for garbled in (("m-results-[0.5,0\x17.1]",), ("m-tkd-output-[80ff7]",), ("m-ready",)):
        with pytest.raises(ProtocolError):
            _numbers(Reply(garbled).results, 2, "m-results")
        with pytest.raises(ProtocolError):
            _numbers(Reply(garbled).int8_output, 3, "tkd-output")
    with pytest.raises(ProtocolError, match="has 1 values"):
        _numbers(Reply(("m-results-[0.5]",)).results, 2, "m-results")


def test_discovery_matches_usb_ids_against_board_profiles(capsys):
    ports = [
        SimpleNamespace(
            device="/dev/ttyACM0",
            vid=0x2341,
            pid=0x805A,
            description="Nano 33 BLE",
            serial_number="A",
        ),
        SimpleNamespace(
            device="/dev/ttyUSB0", vid=0x10C4, pid=0xEA60, description="CP2102", serial_number=""
        ),
        SimpleNamespace(
            device="/dev/ttyS0", vid=None, pid=None, description="n/a", serial_number=None
        ),
        SimpleNamespace(
            device="/dev/ttyACM1", vid=0x1234, pid=0x5678, description="other", serial_number=""
        ),
    ]
    found = attached_boards(ports)
    assert [f.port for f in found] == ["/dev/ttyACM0", "/dev/ttyUSB0"]
    assert found[0].board.name == "nano33ble" and found[0].usb_id == "2341:805A"
    assert found[1].board is None and found[1].names == "esp32 or esp32s3"  # a shared bridge
    print_attached_boards(ports)
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2].split()[:3] == ["/dev/ttyACM0", "2341:805A", "nano33ble"]


def test_progress_bar_lines():
    stream = io.StringIO()
    bar = ProgressBar("student", stream, in_place=False, width=10)
    for done in range(1, 21):
        bar(done, 20, SimpleNamespace(status="failed" if done == 7 else "answered"))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 11  # one per tenth, and the end
    assert lines[-1].startswith("student [##########] 20/20") and "failed 1  done" in lines[-1]


def test_markdown_and_html_say_the_same_thing():
    blocks = [
        ("heading", "Title <1>"),
        ("text", "a & b"),
        ("table", ["x", "y"], [["1", "a|b"]]),
        ("list", ["one"]),
        ("image", "plot.png", "a plot"),
    ]
    markdown = render_markdown(blocks)
    assert markdown.splitlines()[:5] == ["# Title <1>", "", "a & b", "", "| x | y |"]
    assert "| 1 | a\\|b |" in markdown and "- one" in markdown and "![a plot](plot.png)" in markdown
    html = render_html(blocks, "Title")
    assert "<h1>Title &lt;1&gt;</h1>" in html and "<p>a &amp; b</p>" in html
    assert "<td>a|b</td>" in html and '<img src="plot.png" alt="a plot">' in html


def test_device_section_from_a_synthetic_run(bench_model, samples):
    """Figures of a device section, by hand: ticks → ms, memory from an ELF, counts."""
    from collections import Counter

    from tinykd.firmware.elf_sizes import BuildSizes
    from tinykd.measure.harness.benchmark import BenchData, device_section, model_from_file
    from tinykd.measure.harness.client import DeviceInfo
    from tinykd.measure.harness.runner import DeviceRun, SampleRecord

    x, y = samples
    model = model_from_file(bench_model.path, "student")
    model.host_outputs = host = bench_model.host_outputs[:4]
    records = []
    for index in range(4):
        record = SampleRecord(index, status="answered", attempts=1, output=host[index])
        record.ticks, record.load_seconds = 64_000 * (index + 1), 0.01
        records.append(record)
    records[3].status, records[3].output, records[3].failure = "failed", None, "protocol: x"
    records[3].attempts, records[3].problems = 4, ["protocol: x"] * 4
    info = DeviceInfo(
        name="tinykd",
        tkd={
            "arena-used": "5000",
            "arena-size": "6000",
            "tick-unit": "cycles",
            "ticks-per-second": "64000000",
        },
    )
    run = DeviceRun("socket://x:1", info, "binary", records, Counter(resyncs=4), 1.0, 64, 115200)
    data = BenchData(x[:4], y[:4], [str(i) for i in range(10)], "digits", "sklearn")
    section = device_section(
        run, model, data, None, BuildSizes(text=90_000, data=1_000, bss=20_000)
    )
    assert section["latency"]["median_ms"] == pytest.approx(2.0)  # 1, 2, 3 ms
    assert section["latency"]["estimated"] is False and section["latency"]["samples"] == 3
    assert section["memory"]["sram_bytes"] == 21_000 - 6_000 + 5_000
    assert section["memory"]["flash_bytes"] == 91_000
    samples_counts = section["samples"]
    assert (samples_counts["answered"], samples_counts["failed"], samples_counts["retried"]) == (
        3,
        1,
        1,
    )
    assert samples_counts["failures"] == [{"index": 3, "attempts": 4, "reason": "protocol: x"}]
    assert section["agreement_exact"] == 1.0
    assert section["link"]["input_bytes_per_second"] == pytest.approx(64 / 0.01)


def test_a_model_that_does_not_fit_says_what_it_needs(bench_model, samples):
    import dataclasses

    from tinykd.measure.harness.benchmark import BenchData, model_section

    x, y = samples
    board = dataclasses.replace(load_board("nano33ble"), sram_bytes=66_000)  # 464 B usable
    data = BenchData(x, y, [str(i) for i in range(10)], "digits", "sklearn")
    section = model_section(bench_model, data, board, device=None)
    # arena + input copy (8×8×1 int8 = 64 B) + core state (512) + stack margin (2,048)
    needed = bench_model.arena_bytes + 64 + 512 + 2048
    assert section["fit"]["fits"] is False and section["fit"]["sram_needed_bytes"] == needed
    assert section["device_note"] == (
        f"does not fit nano33ble: needs {needed:,} bytes SRAM (has 464 usable)"
    )
    # By hand from plain_cnn on 8×8×1 digits and nano33ble's cycles per MAC (conv_2d 10,
    # fully_connected 8, default 12): conv1 8·8·8 outputs × 3·3·1 + conv2 4·4·16 × 3·3·8 =
    # 23,040 MACs; the dense layer 256 × 10 = 2,560; max pooling 4·4·8 = 128 outputs;
    # the flatten (a reshape) is free.
    assert section["estimate"]["cycles"] == 23_040 * 10 + 2_560 * 8 + 128 * 12 == 252_416
