"""Latency counted in QEMU during the search: which boards it applies to, the checks made
before any work, and (with a TFLM tree and QEMU) the prediction from the untrained
candidate against the trained student's count.

The QEMU test needs qemu-system-arm, the GNU Arm toolchain and a TFLM tree (TFLM_DIR): it
skips with the reason without them, and TINYKD_TEST_QEMU_TFLM=1 turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tinykd.boards import load_board
from tinykd.commands.search import search_limits
from tinykd.errors import TinyKDError
from tinykd.search.cost import SearchLimits

FORCE_ENV = "TINYKD_TEST_QEMU_TFLM"


def test_qemu_counts_only_stand_for_the_cortex_m4_instruction_set():
    """ARMv7E-M cores (M4, M4F, M7) run the instructions QEMU's Cortex-M4 counts; a
    Cortex-M0+ or an Xtensa core does not, and keeps the estimate even with a tree."""
    for board, counts in (
        ("nano33ble", True),
        ("portenta_h7", True),
        ("pico", False),
        ("esp32s3", False),
    ):
        limits = SearchLimits(load_board(board), max_latency_ms=50.0, tflm_dir="/some/tree")
        assert limits.counts_in_qemu is counts
        assert limits.describe().endswith(
            "latency ≤ 50 ms (QEMU count)" if counts else "latency ≤ 50 ms (estimated)"
        )
    assert not SearchLimits(load_board("nano33ble")).counts_in_qemu  # no tree: estimated


def test_a_wrong_tree_fails_before_any_work(tmp_path, monkeypatch):
    monkeypatch.delenv("TFLM_DIR", raising=False)
    with pytest.raises(TinyKDError, match="is not a TFLM source tree"):
        search_limits("nano33ble", tflm_dir=str(tmp_path))
    monkeypatch.setenv("TFLM_DIR", str(tmp_path))  # the environment gives a tree too
    with pytest.raises(TinyKDError, match="is not a TFLM source tree"):
        search_limits("nano33ble")
    monkeypatch.delenv("TFLM_DIR")
    assert search_limits("nano33ble").tflm_dir is None


def test_missing_qemu_is_one_message_that_says_what_to_install(tmp_path, monkeypatch):
    import tinykd.commands.search as command
    import tinykd.firmware.tflm_library as library

    monkeypatch.setattr(library, "find_tflm_tree", lambda folder: library.TflmTree(tmp_path))
    monkeypatch.setattr(command, "which", lambda tool: None)
    with pytest.raises(TinyKDError) as error:
        search_limits("nano33ble", tflm_dir=str(tmp_path))
    message = str(error.value)
    assert "qemu-system-arm and arm-none-eabi-gcc is not installed" in message
    assert "apt-get install" in message and "unset TFLM_DIR" in message


@pytest.fixture(scope="module")
def tflm_tree():
    from tinykd.firmware.tflm_library import find_tflm_tree

    missing = [t for t in ("qemu-system-arm", "arm-none-eabi-gcc") if shutil.which(t) is None]
    try:
        tree = find_tflm_tree()
    except TinyKDError:
        missing.append("a TFLM tree (TFLM_DIR)")
    if missing:
        if os.environ.get(FORCE_ENV) == "1":
            pytest.fail(f"{FORCE_ENV}=1 but missing: {', '.join(missing)}")
        pytest.skip(f"missing: {', '.join(missing)}")
    return tree


def test_untrained_count_predicts_the_trained_students_count(digits_split, tflm_tree, tmp_path):
    """The reference kernels execute the same instructions whatever the weights: the count
    made before training is the trained student's, in the same firmware."""
    from tinykd.config import config_from_dict
    from tinykd.measure.qemu_run import run_in_qemu
    from tinykd.measure.tflm import TflmModel
    from tinykd.pipeline import train_student
    from tinykd.progress import Progress
    from tinykd.search.candidates import Candidate
    from tinykd.search.cost import QemuLatency, convert_candidate, fresh_keras_names, predict_cost
    from tinykd.search.study import with_student

    data = digits_split
    config = config_from_dict({"data": {"dataset": "digits"}, "student": {"batch_size": 64}})
    nano, candidate = load_board("nano33ble"), Candidate("plain_cnn", 0.5)
    qemu = QemuLatency(tflm_tree, tmp_path / "qemu")
    predicted = predict_cost(candidate, data.x_train, 10, nano, config, qemu)
    with fresh_keras_names():
        trained = train_student(
            with_student(config, candidate, epochs=1), data, Progress(quiet=True)
        ).model
    artifact = convert_candidate(trained, data.x_train, config)
    inputs = TflmModel(artifact).quantize(data.x_test[:5])
    run = run_in_qemu(
        load_board("mps2_an386"),
        artifact,
        inputs,
        tflm=tflm_tree,
        out_dir=tmp_path / "trained",
    )
    assert run.identical_outputs == 5
    assert predicted.instructions == pytest.approx(run.ticks_median, rel=0.01)
    assert predicted.latency_ms == pytest.approx(1000 * predicted.instructions / 64e6)
    assert predicted.latency_source.startswith("QEMU instruction count")
    assert predicted.latency_label == "QEMU count"
    assert predicted.latency_estimated_ms > 0
