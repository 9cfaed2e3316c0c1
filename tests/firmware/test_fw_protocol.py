"""The firmware core's protocol, replayed on the host against MLPerf Tiny transcripts."""

from __future__ import annotations

import zlib
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest
from fw_helpers import FIXTURE_SETTINGS, TRANSCRIPTS, FixtureRuntime, parse, replay, split_lines

from tinykd.firmware.host_core import HostCore, ManualClock
from tinykd.measure.harness.protocol import (
    db_commands,
    infer_command,
    results_tolerance,
    split_replies,
)

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


def _reference_decimal(value: float, decimals: int) -> str:
    """m-results text by an independent route: float32 scaling, decimal rounding."""
    scaled = np.float32(value) * np.float32(10.0**decimals)
    units = Decimal(float(scaled)).quantize(Decimal(1), rounding=ROUND_HALF_UP)  # half away
    return f"{units / 10**decimals:.{decimals}f}"


def _settings(tmp_path, *, classes: int, scale: float, zero_point: int, probabilities=None):
    """The fixture's model_settings.h with another output: class count and quantization."""
    settings = FIXTURE_SETTINGS.read_text()
    settings = settings.replace("#define TKD_NUM_CLASSES 3", f"#define TKD_NUM_CLASSES {classes}")
    settings = settings.replace('{"zero", "one", "two"}', "{0}")
    settings = settings.replace(
        "#define TKD_OUTPUT_SCALE 0.00390625f", f"#define TKD_OUTPUT_SCALE {scale!r}f"
    )
    settings = settings.replace(
        "#define TKD_OUTPUT_ZERO_POINT -128", f"#define TKD_OUTPUT_ZERO_POINT {zero_point}"
    )
    if probabilities is not None:
        settings = settings.replace(
            "#define TKD_ARENA_SIZE",
            f"#define TKD_OUTPUT_IS_PROBABILITIES {probabilities}\n#define TKD_ARENA_SIZE",
        )
    path = tmp_path / f"model_settings_{classes}_{probabilities}.h"
    path.write_text(settings)
    return path


def _results(core, command=b"infer 1 0%") -> list[str]:
    lines = split_lines(core.feed(command))
    results = [line for line in lines if line.startswith("m-results-[")]
    assert len(results) == 1 and results[0].endswith("]"), lines
    return results[0][len("m-results-[") : -1].split(",")


def test_results_formatting_matches_an_independent_rounding(tmp_path):
    """A softmax-output model: every int8 value dequantized through an awkward scale and
    zero point (negative values too), six decimals rounded half away from zero."""
    scale, zero_point = 0.0123456789, 5
    path = _settings(tmp_path, classes=256, scale=scale, zero_point=zero_point, probabilities=1)
    core = HostCore(path, StubRuntime(lambda _: list(range(-128, 128))))
    core.boot()
    core.feed(ZERO_INPUT)
    expected = [
        _reference_decimal(np.float32(q - zero_point) * np.float32(scale), 6)
        for q in range(-128, 128)
    ]
    assert _results(core) == expected
    assert (
        split_lines(core.feed(b"tkd-output%"))[0]
        == "m-tkd-output-[" + bytes(np.arange(-128, 128, dtype=np.int8).view(np.uint8)).hex() + "]"
    )


def test_a_single_output_is_reported_as_its_dequantized_score(tmp_path):
    """One output (an anomaly score, as MLPerf's ad01): no softmax, three decimals."""
    scale, zero_point = 0.0123456789, 5
    outputs = iter(range(-128, 128))
    path = _settings(tmp_path, classes=1, scale=scale, zero_point=zero_point)
    core = HostCore(path, StubRuntime(lambda _: [next(outputs)]))
    core.boot()
    core.feed(ZERO_INPUT)
    for q in range(-128, 128):
        expected = _reference_decimal(np.float32(q - zero_point) * np.float32(scale), 3)
        assert _results(core) == [expected]


@pytest.mark.parametrize("classes,scale", [(10, 0.0625), (10, 0.3), (2, 0.05), (100, 0.02)])
def test_softmax_matches_numpy(tmp_path, classes, scale):
    """Logits in, class probabilities out: the firmware's float32 softmax (its own exp, no
    libm) against numpy's float64 softmax of the same dequantized values.

    Tolerance (protocol.results_tolerance): half a unit of the sixth decimal for printing,
    plus float32 rounding, 2^-24 relative per operation: |y| <= 255 * scale from rounding
    the exponent y, about 6 in the exp's range reduction and polynomial, K - 1 in the sum,
    one for the division and one for printing. Worst case here: (0.3 * 255 + 10 + 8) *
    2^-24 = 5.6e-6 relative, i.e. at most 6.1e-6 absolute on a probability.
    """
    rng = np.random.default_rng(classes)
    vectors = [rng.integers(-128, 128, classes) for _ in range(40)]
    vectors += [np.full(classes, 7), np.r_[127, np.full(classes - 1, -128)]]  # ties, extremes
    zero_point = -3
    path = _settings(tmp_path, classes=classes, scale=scale, zero_point=zero_point)
    pending = iter(vectors)
    core = HostCore(path, StubRuntime(lambda _: [int(v) for v in next(pending)]))
    core.boot()
    core.feed(ZERO_INPUT)
    worst = 0.0
    for vector in vectors:
        printed = np.array([float(text) for text in _results(core)])
        logits = (vector.astype(np.float64) - zero_point) * float(np.float32(scale))
        exact = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        tolerance = results_tolerance(exact, scale, output_is_probabilities=False)
        assert np.all(np.abs(printed - exact) <= tolerance), (vector, printed, exact)
        assert np.all(tolerance < 7e-6)
        assert printed.argmax() == vector.argmax()  # equal logits: the first, as numpy
        worst = max(worst, float(np.max(np.abs(printed - exact))))
    print(f"largest |firmware - numpy| for K={classes}, scale={scale}: {worst:.2e}")


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
    # sum 1720: outputs (184, 28, 128) / 256 dequantized; softmax by numpy (float64):
    # 0.426037151, 0.231632381, 0.342330468
    assert reply.results() == [0.426037, 0.231632, 0.342330]
