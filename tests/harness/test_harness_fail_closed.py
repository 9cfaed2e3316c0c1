"""Faults aimed at the replies a fail-open harness trusted: never a wrong answer, never lost.

Each scenario (``tinykd_lab.fault_scenarios``) runs the samples through a real
fault-injecting TCP proxy (127.0.0.1) to an emulated board; the harness itself is not mocked.
Every sample must end answered with exactly the TFLM host outputs, or failed with a reason.
"""

from __future__ import annotations

import pytest
from harness_settings import FAST, SAMPLES

from tinykd_lab.fault_scenarios import run_scenario, scenarios

NAMES = [scenario.name for scenario in scenarios(bytes(SAMPLES))]


def _all_correct(outcome):
    assert outcome.correct == outcome.total, outcome


def _refused(outcome):
    assert outcome.failed == outcome.total and outcome.correct == 0, outcome
    assert "refused" in outcome.reasons[0] and "hash" in outcome.reasons[0], outcome.reasons


def _binary_kept(outcome):
    _all_correct(outcome)
    assert outcome.transport == "binary" and "tkd-bulk" in outcome.transport_reason, outcome


def _cross_check_kept(outcome):
    _all_correct(outcome)
    assert "tkd-output" in outcome.device_commands, outcome


def _input_read_back(outcome):
    _all_correct(outcome)
    assert outcome.transport == "hex" and outcome.faults_fired == 1, outcome
    assert outcome.retried == 1, outcome  # the read-back caught the changed digit


def _rest_failed_with_reason(outcome):
    assert 0 < outcome.failed < outcome.total, outcome
    assert outcome.correct + outcome.failed == outcome.total, outcome


# What each scenario must end in beyond "0 wrong, 0 missing".
EXPECTED = {
    "tkd-info: hash key garbled, device runs another model": _refused,
    "help%: tkd-bulk garbled": _binary_kept,
    "help%: tkd-output garbled": _cross_check_kept,
    "hex input: one digit changed to another": _input_read_back,
    "device vanishes mid-run": _rest_failed_with_reason,
}


@pytest.mark.parametrize("name", NAMES)
def test_no_wrong_and_no_missing_answer(name, emulator, bench_model, samples):
    process, url = emulator
    inputs = bench_model.quantized_inputs(samples[0])
    scenario = next(s for s in scenarios(inputs[0].tobytes()) if s.name == name)
    outcome = run_scenario(
        scenario, url, process, bench_model.identity, inputs, bench_model.host_outputs, FAST
    )
    assert outcome.wrong == 0 and outcome.missing == 0, outcome
    if scenario.faults:
        assert outcome.faults_fired >= 1 or outcome.reasons, outcome
    EXPECTED.get(name, _all_correct)(outcome)
