"""Named fault scenarios and their scoring: what the harness must survive without a wrong answer.

Each ``Scenario`` is a list of ``Fault``s for the ``FaultInjector`` between the harness and
an emulated board, aimed at the replies a fail-open harness trusted (the model hash in
``tkd-info``, the capabilities in ``help%``, a hex input digit). ``run_scenario`` benchmarks
samples through the injector and sorts every sample into answered correctly (exactly the
reference outputs), answered wrong, failed with a reason, or missing. Used by
``tests/harness/test_harness_fail_closed.py`` and ``bench/harness_faults.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass, field, replace

import numpy as np

from tinykd.errors import TinyKDError
from tinykd.measure.harness.protocol import MLPERF_CMD_SIZE
from tinykd.measure.harness.runner import (
    BoardSession,
    ModelIdentity,
    SessionOptions,
    run_benchmark,
)
from tinykd_lab.faults import Fault, FaultInjector

HASH = b"m-tkd-hash-["  # a tkd-info line: 12 bytes, 16 hex digits, "]", CR, LF
HASH_LINE_END = len(HASH) + 16 + 2  # offset of the LF that ends the hash line

# Bytes lost, garbled and delayed both ways, and a reset (used by the fault tests too).
LINK_FAULTS = [
    Fault("drop", "to_device", 900),
    Fault("corrupt", "to_device", 2500),
    Fault("drop", "to_host", 4000),
    Fault("corrupt", "to_host", 6000),
    Fault("delay", "to_host", 8000, seconds=1.5),
    Fault("reset", "to_device", 5200),
    Fault("corrupt", "to_device", 7000, count=3),
    Fault("drop", "to_device", 9000, count=20),
    Fault("corrupt", "to_host", 11000, count=2),
]


@dataclass(frozen=True)
class Scenario:
    name: str
    faults: list[Fault]
    transport: str = "auto"
    other_model: bool = False  # the device runs a model other than the one expected


@dataclass
class Outcome:
    """How every sample of one scenario ended."""

    scenario: str
    total: int
    correct: int = 0
    wrong: int = 0
    failed: int = 0
    missing: int = 0
    reasons: list[str] = field(default_factory=list)  # distinct failure reasons
    transport: str = ""
    transport_reason: str = ""
    faults_fired: int = 0
    retried: int = 0  # samples that needed more than one attempt
    device_commands: frozenset[str] = frozenset()  # what the harness believes the device offers


def _hex_digit_fault(first_input: bytes) -> Fault:
    """One decimal hex digit of the first input's first ``db`` chunk turned into another.

    XOR 0x01 maps '0'..'9' onto '0'..'9': the device accepts the command, and only the
    read-back (``db print``) can notice that the input it holds is not the one sent.
    """
    chunk = first_input[: (MLPERF_CMD_SIZE - 3) // 2].hex()
    position = next(i for i, digit in enumerate(chunk) if digit.isdigit())
    return Fault("corrupt", "to_device", 3 + position, match=b"db " + chunk[:8].encode(), mask=1)


def scenarios(first_input: bytes) -> list[Scenario]:
    """The scenarios, in the order of the README table."""
    drop_hash_line_end = [
        Fault("drop", "to_host", HASH_LINE_END, match=HASH, occurrence=n) for n in (2, 3, 6)
    ]
    return [
        Scenario("no fault", []),
        Scenario("link faults + reset (binary)", LINK_FAULTS),
        Scenario("link faults + reset (hex)", LINK_FAULTS, transport="hex"),
        Scenario(
            "tkd-info: model hash digit garbled",
            [Fault("corrupt", "to_host", len(HASH) + 2, match=HASH)],
        ),
        Scenario("tkd-info: hash key garbled", [Fault("corrupt", "to_host", 7, match=HASH)]),
        Scenario(
            "tkd-info: line ending dropped",
            [Fault("drop", "to_host", HASH_LINE_END, match=HASH)],
        ),
        Scenario(
            "tkd-info: hash key garbled, device runs another model",
            [Fault("corrupt", "to_host", 7, match=HASH)],
            other_model=True,
        ),
        Scenario(
            "help%: tkd-bulk garbled",
            [Fault("corrupt", "to_host", 5, match=b"tkd-bulk N C")],
        ),
        Scenario(
            "help%: tkd-output garbled",
            [Fault("corrupt", "to_host", 5, match=b"tkd-output ")],
        ),
        Scenario(
            "reset, tkd-info line endings dropped around the reconnect",
            [Fault("reset", "to_device", 0, match=b"tkd-bulk ", occurrence=10)]
            + drop_hash_line_end,
        ),
        Scenario("hex input: one digit changed to another", [_hex_digit_fault(first_input)], "hex"),
        Scenario("device vanishes mid-run", [Fault("vanish", "to_device", 2000)]),
    ]


def run_scenario(
    scenario: Scenario,
    device_url: str,
    device_process: subprocess.Popen,
    identity: ModelIdentity,
    inputs: np.ndarray,
    reference: np.ndarray,
    options: SessionOptions,
) -> Outcome:
    """``inputs`` through ``scenario``'s faults to the device; each sample scored.

    ``reference``: the exact int8 outputs of the model on the host (TFLM). A device that
    is refused (another model) fails every sample with the refusal as its reason.
    """
    injector = FaultInjector(
        device_url,
        scenario.faults,
        reset=lambda: os.kill(device_process.pid, signal.SIGUSR1),
    )
    expected = replace(identity, hash="0" * 16, name="other") if scenario.other_model else identity
    session = BoardSession(
        injector.start(), expected, replace(options, transport=scenario.transport)
    )
    outcome = Outcome(scenario.name, total=len(inputs))
    try:
        run = run_benchmark(session, inputs)
    except TinyKDError as refused:
        outcome.failed = len(inputs)
        outcome.reasons = [f"refused: {refused}"]
        return outcome
    finally:
        session.close()
        injector.close()
    outcome.transport, outcome.transport_reason = run.transport, run.transport_reason
    outcome.faults_fired = len(injector.events)
    outcome.retried = sum(record.attempts > 1 for record in run.records)
    outcome.device_commands = run.device.commands if run.device else frozenset()
    for record in run.records:
        if record.status == "answered" and record.output is not None:
            if np.array_equal(record.output, reference[record.index]):
                outcome.correct += 1
            else:
                outcome.wrong += 1
        elif record.status == "failed" and record.failure:
            outcome.failed += 1
            if record.failure not in outcome.reasons:
                outcome.reasons.append(record.failure)
        else:
            outcome.missing += 1
    return outcome
