"""The firmware core's protocol, replayed on the host against MLPerf Tiny transcripts."""

from __future__ import annotations

import zlib
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest
from fw_helpers import FIXTURE_SETTINGS, TRANSCRIPTS, FixtureRuntime, parse, replay, split_lines

from tinykd.firmware.host_core import HostCore, ManualClock
from tinykd.firmware.protocol import db_commands, infer_command, split_replies

TRANSCRIPT_FILES = sorted(TRANSCRIPTS.glob("*.txt"))


class StubRuntime:
    """A runtime whose init code and invoke behaviour a test chooses."""

    arena_used = 0

    def __init__(self, invoke, init_code=0):
        self._invoke, self._init_code = invoke, init_code

    def init(self):
        return self._init_code

    def invoke(self, input_bytes):
        return self._invoke(input_bytes)


def _raise(error):
    raise error


ZERO_INPUT = b"db load 16%db 00000000000000000000000000000000%"


def make_core(transcript=None, **kwargs):
    clock = ManualClock(
        transcript.ticks_per_second if transcript else 1_000_000,
        transcript.unit if transcript else "us",
        transcript.start if transcript else 0,
    )
    runtime = FixtureRuntime(clock, transcript.invoke_ticks if transcript else 1000)
    return HostCore(FIXTURE_SETTINGS, runtime, clock=clock, **kwargs), clock, runtime


@pytest.mark.parametrize("path", TRANSCRIPT_FILES, ids=lambda p: p.stem)
def test_transcript(path):
    transcript = parse(path)
    core, clock, _ = make_core(transcript)
    replay(transcript, core.boot, core.feed, clock)


@pytest.mark.parametrize("path", TRANSCRIPT_FILES, ids=lambda p: p.stem)
def test_transcript_byte_by_byte(path):
    """A UART delivers bytes one at a time: the replies must not depend on chunking."""
    transcript = parse(path)
    core, clock, _ = make_core(transcript)
    for step in transcript.steps:
        clock.advance(step.advance)
        if step.send is None:
            output = core.boot()
        else:
            output = b"".join(core.feed(step.send[i : i + 1]) for i in range(len(step.send)))
            output += core.feed(b"") if not step.send else b""
        assert split_lines(output) == step.expect


def test_every_transcript_ends_each_reply_with_ready():
    """Every reply ends in m-ready, except tkd-bulk's, which ends after its raw bytes."""
    for path in TRANSCRIPT_FILES:
        for step in parse(path).steps:
            if step.expect:
                last = step.expect[-1]
                assert last == "m-ready" or last.startswith("m-tkd-bulk-ready-["), (path.name, step)


def test_help_lists_every_command():
    core, _, _ = make_core()
    core.boot()
    lines = split_lines(core.feed(b"help%"))
    assert lines[-1] == "m-ready"
    text = "\n".join(lines)
    for command in (
        "name",
        "profile",
        "timestamp",
        "db load",
        "db print",
        "infer",
        "results",
        "tkd-info",
        "tkd-ticks",
        "tkd-output",
        "tkd-bulk",
    ):
        assert command in text


def test_input_reaches_the_runtime_unchanged_for_every_byte_value():
    core, _, runtime = make_core()
    core.boot()
    data = bytes(range(240, 256))
    crc = zlib.crc32(data)
    assert split_lines(core.feed(f"tkd-bulk 16 {crc:08x}%".encode())) == ["m-tkd-bulk-ready-[16]"]
    assert split_lines(core.feed(data)) == ["m-load-done", "m-ready"]
    core.feed(b"infer 3 2%")
    assert runtime.inputs == [data] * 5  # 2 warmup + 3 timed, each a fresh copy


def _reference_milli(q: int, scale: float, zero_point: int) -> str:
    """m-results text by an independent route: float32 product, decimal rounding."""
    value = np.float32(np.float32(q - zero_point) * np.float32(scale)) * np.float32(1000.0)
    milli = Decimal(float(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP)  # half away from 0
    return f"{milli / 1000:.3f}"


def test_results_formatting_matches_an_independent_rounding(tmp_path):
    """Every int8 value through an awkward scale and zero point, incl. negative results."""
    scale, zero_point = 0.0123456789, 5
    settings = FIXTURE_SETTINGS.read_text()
    settings = settings.replace("#define TKD_NUM_CLASSES 3", "#define TKD_NUM_CLASSES 256")
    settings = settings.replace('{"zero", "one", "two"}', "{0}")
    settings = settings.replace(
        "#define TKD_OUTPUT_SCALE 0.00390625f", f"#define TKD_OUTPUT_SCALE {scale}f"
    )
    settings = settings.replace(
        "#define TKD_OUTPUT_ZERO_POINT -128", f"#define TKD_OUTPUT_ZERO_POINT {zero_point}"
    )
    path = tmp_path / "model_settings.h"
    path.write_text(settings)

    core = HostCore(path, StubRuntime(lambda _: list(range(-128, 128))))
    core.boot()
    core.feed(ZERO_INPUT)
    lines = split_lines(core.feed(b"infer 1 0%"))
    results = lines[-2]
    assert results.startswith("m-results-[") and results.endswith("]")
    got = results[len("m-results-[") : -1].split(",")
    expected = [_reference_milli(q, scale, zero_point) for q in range(-128, 128)]
    assert got == expected
    assert (
        split_lines(core.feed(b"tkd-output%"))[0]
        == "m-tkd-output-[" + bytes(np.arange(-128, 128, dtype=np.int8).view(np.uint8)).hex() + "]"
    )


def test_runtime_failures_are_reported_not_hidden():
    runtime = StubRuntime(lambda _: _raise(AssertionError("not called")), init_code=3)  # ERR_ARENA
    core = HostCore(FIXTURE_SETTINGS, runtime)
    assert split_lines(core.boot()) == [
        "m-timestamp-mode-performance",
        "e-[Runtime init failed with code 3]",
        "m-init-done",
        "m-ready",
    ]
    core.feed(ZERO_INPUT)
    assert split_lines(core.feed(b"infer 1 0%")) == [
        "e-[Runtime not ready: init failed with code 3]",
        "m-ready",
    ]


def test_python_exception_in_the_runtime_propagates():
    core = HostCore(FIXTURE_SETTINGS, StubRuntime(lambda _: _raise(ValueError("model exploded"))))
    core.boot()
    core.feed(ZERO_INPUT)
    with pytest.raises(ValueError, match="model exploded"):
        core.feed(b"infer 1 0%")


def test_wrong_output_size_is_an_invoke_error():
    core = HostCore(FIXTURE_SETTINGS, StubRuntime(lambda _: [1, 2]))
    core.boot()
    core.feed(ZERO_INPUT)
    with pytest.raises(Exception, match="2 outputs"):
        core.feed(b"infer 1 0%")


def test_command_size_comes_from_the_config():
    core, _, _ = make_core(cmd_size=200)
    core.boot()
    long_command = b"db load 16%db " + b"00" * 16 + b"%"
    assert split_lines(core.feed(long_command))[-2:] == ["m-load-done", "m-ready"]
    assert split_lines(core.feed(b"x" * 201 + b"%"))[0] == (
        "e-[Command too long: the limit is 200 characters]"
    )


def test_instances_do_not_share_state():
    first, _, _ = make_core()
    second, _, _ = make_core()
    first.boot()
    second.boot()
    first.feed(ZERO_INPUT)
    assert split_lines(second.feed(b"db print%")) == ["m-ready"]
    assert split_lines(first.feed(b"db print%"))[0].startswith("m-buffer-00")


def test_large_feed_is_delivered_completely():
    """More bytes than the library's receive queue holds in one feed() call."""
    core, _, _ = make_core()
    core.boot()
    commands = b"name%" * 20000  # 100 kB in, 40000 lines out
    lines = split_lines(core.feed(commands))
    assert lines == ["m-name-dut-[tinykd]", "m-ready"] * 20000


@pytest.mark.parametrize("cmd_size", [20, 80])
def test_db_commands_fit_the_command_buffer(cmd_size):
    core, _, runtime = make_core(cmd_size=cmd_size)
    core.boot()
    data = bytes(range(100, 116))
    commands = db_commands(data, cmd_size)
    assert all(len(command) - 1 <= cmd_size for command in commands)  # without the '%'
    replies = split_replies(b"".join(core.feed(command) for command in commands).decode())
    assert replies[-1].lines == ("m-load-done",) and not any(reply.errors for reply in replies)
    reply = split_replies(core.feed(infer_command(2, 1)).decode())[0]
    assert runtime.inputs == [data] * 3
    assert reply.laps_us() == [1000, 3000]  # one warmup run, then two timed runs of 1000 us
    assert reply.results() == [0.719, 0.109, 0.5]  # sum 1720: (184, 28, 128) / 256
