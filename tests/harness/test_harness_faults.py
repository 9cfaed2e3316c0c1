"""The harness against an emulated board through a fault injector: nothing is lost silently.

Whatever the link does (dropped, corrupted or delayed bytes in either direction, a board
reset mid-run, the board vanishing), every sample ends answered or failed with its reason,
and every answered sample carries exactly the outputs the TFLM host interpreter computes:
a corrupted reply is never taken for a result.
"""

from __future__ import annotations

import os
import signal
import threading

import numpy as np
import pytest
from harness_settings import FAST

from tinykd.measure.devices.host_device import start_emulator_process
from tinykd.measure.harness.runner import (
    BoardSession,
    ModelIdentity,
    SessionOptions,
    WrongModel,
    run_benchmark,
)
from tinykd_lab.fault_scenarios import LINK_FAULTS
from tinykd_lab.faults import Fault, FaultInjector

FAULTS = LINK_FAULTS


def _run(url, bench_model, samples, transport, **options):
    session = BoardSession(
        url,
        bench_model.identity,
        SessionOptions(**{**FAST.__dict__, "transport": transport, **options}),
    )
    try:
        return run_benchmark(session, bench_model.quantized_inputs(samples[0]))
    finally:
        session.close()


def _assert_exact(run, bench_model):
    answered = run.answered_mask()
    outputs = run.outputs(bench_model.identity.num_classes)
    np.testing.assert_array_equal(outputs[answered], bench_model.host_outputs[answered])


@pytest.mark.parametrize("transport, stream", [("binary", True), ("binary", False), ("hex", False)])
def test_every_sample_survives_link_faults_and_a_reset(
    emulator, bench_model, samples, transport, stream
):
    process, url = emulator
    injector = FaultInjector(url, FAULTS, reset=lambda: os.kill(process.pid, signal.SIGUSR1))
    proxy = injector.start()
    try:
        run = _run(proxy, bench_model, samples, transport, verify_hex=True, stream_bulk=stream)
    finally:
        injector.close()
    counts = run.accounting()
    fired = {event["kind"] for event in injector.events}
    assert {"drop", "corrupt", "delay", "reset"} <= fired, injector.events
    assert counts["answered"] == counts["total"] == len(samples[0])
    assert counts["failed"] == 0 and counts["failures"] == []
    assert 1 <= counts["retried"] <= len(injector.events)
    assert counts["attempts"] == counts["total"] + sum(len(r.problems) for r in run.records)
    assert run.events["resets"] >= 1 and "reset" in counts["problems_by_kind"]
    _assert_exact(run, bench_model)


def test_a_vanished_device_fails_the_rest_with_the_reason(emulator, bench_model, samples):
    _, url = emulator
    injector = FaultInjector(url, [Fault("vanish", "to_device", 2000)])
    proxy = injector.start()
    run = _run(proxy, bench_model, samples, "binary")
    counts = run.accounting()
    assert counts["answered"] + counts["failed"] == counts["total"] == len(samples[0])
    assert 0 < counts["answered"] < counts["total"]
    assert counts["not_sent"] == counts["failed"] - 1  # the one in flight was sent
    failed = [r for r in run.records if r.status == "failed"]
    assert [r.index for r in failed] == list(range(counts["answered"], counts["total"]))
    assert all("device vanished" in r.failure for r in failed)
    assert failed[0].failure.startswith("link-lost")
    assert run.aborted.startswith("device vanished")
    _assert_exact(run, bench_model)


def test_a_board_that_vanishes_and_comes_back_is_resumed(model_path, bench_model, samples):
    """The board is killed mid-run and a new one starts on the same port (a USB board
    re-enumerating after a reset): the harness reconnects, checks the model again, resumes."""
    first, url = start_emulator_process(model_path, pacing=False)
    port = int(url.rsplit(":", 1)[1])
    restarted = []

    def replace_board():
        restarted.append(start_emulator_process(model_path, pacing=False, port=port)[0])

    def progress(done, total, record):
        if done == 20:
            first.kill()
            first.wait()
            threading.Thread(target=replace_board).start()

    options = SessionOptions(**{**FAST.__dict__, "reconnect_attempts": 8, "reconnect_wait": 0.25})
    session = BoardSession(url, bench_model.identity, options)
    try:
        run = run_benchmark(session, bench_model.quantized_inputs(samples[0]), progress=progress)
    finally:
        session.close()
        for process in restarted:
            process.terminate()
            process.wait(timeout=30)
    counts = run.accounting()
    assert counts["answered"] == counts["total"]
    assert run.events["reconnects"] == 1 and counts["retried"] == 1
    assert run.records[20].problems[0].startswith("link-lost")
    _assert_exact(run, bench_model)


def test_a_device_with_another_model_is_refused(emulator, bench_model):
    _, url = emulator
    identity = bench_model.identity
    other = ModelIdentity(**{**identity.__dict__, "hash": "0000000000000000", "name": "other"})
    with pytest.raises(WrongModel, match=f"hash {identity.hash}.*0000000000000000"):
        BoardSession(url, other, FAST).connect()


def test_hex_and_binary_paths_give_identical_results(emulator, bench_model, samples):
    _, url = emulator
    binary = _run(url, bench_model, samples, "binary")
    hex_path = _run(url, bench_model, samples, "hex", verify_hex=True)
    assert (binary.transport, hex_path.transport) == ("binary", "hex")
    for run in (binary, hex_path):
        assert run.accounting()["answered"] == len(samples[0])
        _assert_exact(run, bench_model)
    assert "CRC-32" in binary.input_check and "db print" in hex_path.input_check
