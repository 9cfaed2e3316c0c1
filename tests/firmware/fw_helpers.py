"""Helpers of the firmware tests: transcript replay, stand-in build tools.

Replay protocol transcripts (tests/firmware/transcripts/*.txt) against a firmware core.

Format, one item per line:
    # comment                      @ clock <ticks_per_second> <unit>   (before the first line)
    > text   send text verbatim    @ start <ticks>                     (clock start)
    >> hex   send raw bytes        @ invoke_ticks <ticks>              (clock step per invoke)
    >        poll without data     @ advance <ticks>                   (move the clock now)
    < line   one expected output line (the firmware ends it with \\r\\n)
The output after boot and after each send must equal the "<" lines that follow it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tinykd.firmware.paths import firmware_dir
from tinykd.firmware.render import config_header

TRANSCRIPTS = Path(__file__).parent / "transcripts"
FIXTURE_SETTINGS = Path(__file__).parent / "fixtures" / "model_settings.h"


def skip_or_fail_fuzz(reason: str):
    """Skip a sanitizer fuzz test whose toolchain is missing; fail instead in CI.

    ``CI=true`` (set by the CI runner) or ``TINYKD_TEST_FUZZ=1`` make the fuzz tests
    mandatory: a missing compiler there is a broken setup, not a reason to pass.
    """
    if os.environ.get("CI") == "true" or os.environ.get("TINYKD_TEST_FUZZ"):
        pytest.fail(f"{reason} (CI=true or TINYKD_TEST_FUZZ=1: the fuzz tests must run)")
    pytest.skip(reason)


def fuzz_compiler(
    work: Path, compiler: str, flags: list[str], driver: Path
) -> Callable[[Path, str], Path]:
    """``compile_with(core_source, name)``: the fuzz ``driver`` and the host HAL built
    against a given ``tkd_core.c`` (the fixture model: 16 input bytes, 3 classes)."""
    (work / "tkd_config.h").write_text(
        config_header(board_name="fuzz", baud=115200, cpu_hz=1_000_000, cycle_counter="host")
    )
    (work / "model_settings.h").write_text(FIXTURE_SETTINGS.read_text())
    sources = firmware_dir()

    def compile_with(core_source: Path, name: str) -> Path:
        command = [compiler, *flags, f"-I{work}", f"-I{sources / 'core'}", str(core_source)]
        command += [str(sources / "hal/host/tkd_host_lib.c"), str(driver), "-o", str(work / name)]
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return work / name

    return compile_with


def core_with_planted_overflow(work: Path) -> Path:
    """A copy of tkd_core.c whose command-length check is off by eight: a fuzzer must crash it."""
    source = (firmware_dir() / "core" / "tkd_core.c").read_text()
    check = "} else if (s_cmd_len == TKD_CMD_SIZE) {"
    assert check in source
    broken = work / "tkd_core_broken.c"
    broken.write_text(source.replace(check, "} else if (s_cmd_len == TKD_CMD_SIZE + 8u) {"))
    return broken


@dataclass
class Step:
    send: bytes | None  # None: boot
    advance: int = 0
    expect: list[str] = field(default_factory=list)


@dataclass
class Transcript:
    name: str
    ticks_per_second: int = 1_000_000
    unit: str = "us"
    start: int = 0
    invoke_ticks: int = 0
    steps: list[Step] = field(default_factory=list)


def parse(path: Path) -> Transcript:
    transcript = Transcript(path.stem)
    steps = [Step(send=None)]
    pending_advance = 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw or raw.startswith("#"):
            continue
        if raw.startswith("@ "):
            key, *values = raw[2:].split()
            if key == "clock":
                transcript.ticks_per_second, transcript.unit = int(values[0]), values[1]
            elif key == "start":
                transcript.start = int(values[0])
            elif key == "invoke_ticks":
                transcript.invoke_ticks = int(values[0])
            elif key == "advance":
                pending_advance += int(values[0])
            else:
                raise ValueError(f"{path}:{number}: unknown directive {key!r}")
        elif raw.startswith(">>"):
            steps.append(Step(bytes.fromhex(raw[2:].replace(" ", "")), pending_advance))
            pending_advance = 0
        elif raw.startswith(">"):
            steps.append(Step(raw[2:].encode(), pending_advance))
            pending_advance = 0
        elif raw.startswith("< "):
            steps[-1].expect.append(raw[2:])
        else:
            raise ValueError(f"{path}:{number}: cannot parse {raw!r}")
    transcript.steps = steps
    return transcript


class FixtureRuntime:
    """output[k] = ((Σ input bytes + 100·k) mod 256) − 128; each invoke advances the clock."""

    arena_used = 1234

    def __init__(self, clock, invoke_ticks: int, num_classes: int = 3):
        self.clock, self.invoke_ticks, self.num_classes = clock, invoke_ticks, num_classes
        self.inputs: list[bytes] = []

    def init(self) -> int:
        return 0

    def invoke(self, input_bytes: bytes):
        self.inputs.append(input_bytes)
        self.clock.advance(self.invoke_ticks)
        total = sum(input_bytes)
        return [(total + 100 * k) % 256 - 128 for k in range(self.num_classes)]


def split_lines(output: bytes) -> list[str]:
    text = output.decode("ascii")
    assert text == "" or text.endswith("\r\n"), f"output does not end in CRLF: {text!r}"
    lines = text.split("\r\n")[:-1]
    assert all("\n" not in line and "\r" not in line for line in lines), repr(text)
    return lines


def replay(transcript: Transcript, boot, feed, clock) -> None:
    """Run every step through ``boot()``/``feed(bytes)`` and compare line by line."""
    for index, step in enumerate(transcript.steps):
        clock.advance(step.advance)
        output = boot() if step.send is None else feed(step.send)
        got = split_lines(output)
        assert got == step.expect, (
            f"{transcript.name}: step {index} sent {step.send!r}\n"
            f"expected {step.expect}\n     got {got}"
        )


# ---- stand-in build tools and serial ports -------------------------------------------

ARDUINO_OUTPUT = [
    "Sketch uses 234,512 bytes (23%) of program storage space. Maximum is 983040 bytes.",
    "Global variables use 61872 bytes (23%) of dynamic memory, leaving 200272 bytes for local variables. Maximum is 262144 bytes.",
]
PIO_OUTPUT = [
    "RAM:   [==        ]  23.6% (used 61872 bytes from 262144 bytes)",
    "Flash: [==        ]  23.9% (used 234512 bytes from 983040 bytes)",
]
IDF_OUTPUT = [
    "tinykd_fw.bin binary size 0x3b2c0 bytes. Smallest app partition is 0x100000 bytes. 0xc4d40 bytes (77%) free."
]

FAKE_TOOL = """\
#!{python}
import json, os, sys
arguments = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps([os.path.basename(sys.argv[0]), *arguments]) + "\\n")
if arguments[:2] == ["core", "list"]:
    ids = [i for i in os.environ.get("FAKE_CORES", "").split(",") if i]
    style = os.environ.get("FAKE_JSON_STYLE", "new")
    print(json.dumps({{"platforms": [{{"id": i}} for i in ids]}} if style == "new" else [{{"id": i}} for i in ids]))
elif arguments[:2] == ["lib", "list"]:
    names = [n for n in os.environ.get("FAKE_LIBS", "").split(",") if n]
    print(json.dumps({{"installed_libraries": [{{"library": {{"name": n}}}} for n in names]}}))
else:
    for line in json.loads(os.environ.get("FAKE_OUTPUT", "[]")):
        print(line, flush=True)
    sys.exit(int(os.environ.get("FAKE_EXIT", "0")))
"""


class FakePort:
    """What serial.tools.list_ports.comports() yields, reduced to what tinykd reads."""

    def __init__(self, device, vid, pid, description="", serial_number=""):
        self.device, self.vid, self.pid = device, vid, pid
        self.description, self.serial_number = description, serial_number
