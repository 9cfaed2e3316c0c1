"""The firmware core on the QEMU Cortex-M4: the host build's transcripts, over TCP.

The core, the mps2-an386 HAL and a C fixture runtime are cross-compiled with -Wall -Wextra
-Werror, booted in QEMU and driven through the UART socket. The board's own clock runs
here (instructions, not a hand-moved clock), so numbers that measure time are checked for
form only, and the clock and board lines are those of mps2_an386.
"""

from __future__ import annotations

import re

import pytest
from fw_helpers import TRANSCRIPTS, parse

from tinykd.measure.devices.qemu import QemuBoard

# The host transcripts' emulated board and microsecond clock, as this board reports them.
BOARD_LINES = {
    "m-tkd-board-[emulated]": "m-tkd-board-[mps2_an386]",
    "m-tkd-tick-unit-[us]": "m-tkd-tick-unit-[instructions]",
    "m-tkd-ticks-per-second-[1000000]": "m-tkd-ticks-per-second-[1000000000]",
}
TIMED = re.compile(r"^(m-lap-us-|m-tkd-ticks-(total|min|max|per-inference)-\[)\d+(\]?)$")
# The board's clock is not moved by hand: a transcript built on a chosen clock (a 64 MHz
# counter that wraps mid-inference) stays with the host tests.
HOST_CLOCK_ONLY = {"cycles"}
# Boot, and a stalled tkd-bulk that times out after 1 s of virtual time, may take a while.
STALL_TIMEOUT_S = 30.0


def expected_pattern(line: str) -> re.Pattern:
    line = BOARD_LINES.get(line, line)
    timed = TIMED.match(line)
    if timed:
        return re.compile(re.escape(timed.group(1)) + r"\d+" + re.escape(timed.group(3)) + "$")
    return re.compile(re.escape(line) + "$")


def read_lines(port, count: int, timeout_s: float) -> list[str]:
    port.timeout = timeout_s
    lines = []
    for _ in range(count):
        raw = port.readline()
        assert raw.endswith(b"\r\n"), f"got {lines} then {raw!r} (timeout?)"
        lines.append(raw[:-2].decode("ascii"))
    return lines


TRANSCRIPT_FILES = [p for p in sorted(TRANSCRIPTS.glob("*.txt")) if p.stem not in HOST_CLOCK_ONLY]


@pytest.mark.parametrize("path", TRANSCRIPT_FILES, ids=lambda p: p.stem)
def test_transcript_on_mps2(fixture_firmware_elf, path):
    transcript = parse(path)
    with QemuBoard(fixture_firmware_elf) as board:
        port = board.open_serial()
        for index, step in enumerate(transcript.steps):
            if step.send:
                port.write(step.send)
            timeout = STALL_TIMEOUT_S if step.advance or index == 0 else 5.0
            got = read_lines(port, len(step.expect), timeout)
            for expected, line in zip(step.expect, got, strict=True):
                assert expected_pattern(expected).match(line), (
                    f"{path.stem}: step {index} sent {step.send!r}\n"
                    f"expected {step.expect}\n     got {got}"
                )
        port.timeout = 0.2
        assert port.read(1) == b"", "the board said more than the transcript"


def test_timing_lines_count_instructions(fixture_firmware_elf):
    """tkd-ticks on this board: instructions, a multiple of the 40-instruction tick."""
    with QemuBoard(fixture_firmware_elf) as board:
        port = board.open_serial()
        read_lines(port, 3, STALL_TIMEOUT_S)  # boot banner
        port.write(b"db load 16%db 000102030405060708090a0b0c0d0e0f%")
        read_lines(port, 4, 5.0)
        port.write(b"infer 5 1%")
        lines = read_lines(port, 8, 10.0)
        assert lines[-2:] == ["m-results-[0.304745,0.450385,0.244870]", "m-ready"]
        port.write(b"tkd-ticks%")
        ticks = dict(
            re.match(r"m-tkd-([a-z-]+)-\[(\w+)\]", line).groups()
            for line in read_lines(port, 7, 5.0)
        )
    assert ticks["inferences"] == "5" and ticks["tick-unit"] == "instructions"
    per_inference = int(ticks["ticks-per-inference"])
    # The fixture sums 16 bytes and writes 3 outputs: tens to hundreds of instructions.
    assert 40 <= per_inference <= 2000, ticks
    assert int(ticks["ticks-min"]) % 40 == 0 and int(ticks["ticks-max"]) % 40 == 0
