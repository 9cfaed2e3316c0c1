"""``tinykd emulate --qemu`` and ``tinykd bench --qemu`` without a TFLM tree: what is needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinykd.cli import main
from tinykd.firmware.tflm_library import HOST_TREE_ENV, TFLM_DIR_ENV

FIXTURE = Path(__file__).parents[1] / "firmware" / "fixtures" / "digits_ds_cnn.tflite"


@pytest.fixture()
def no_tflm_tree(monkeypatch):
    monkeypatch.delenv(TFLM_DIR_ENV, raising=False)
    monkeypatch.delenv(HOST_TREE_ENV, raising=False)


def test_emulate_qemu_without_tflm_says_what_it_needs(no_tflm_tree, capsys):
    assert main(["emulate", "--qemu", "--model", str(FIXTURE)]) == 2
    error = capsys.readouterr().err
    assert "TFLM_DIR" in error and "create_tflm_tree.py" in error


def test_bench_qemu_without_tflm_says_what_it_needs(no_tflm_tree, tmp_path, capsys):
    code = main(
        ["bench", "--model", str(FIXTURE), "--dataset", "digits", "--limit", "5", "--qemu"]
        + ["--out", str(tmp_path / "report")]
    )
    assert code == 2
    assert "TFLM_DIR" in capsys.readouterr().err


def test_qemu_flag_rejects_a_board_without_qemu(no_tflm_tree, capsys):
    assert main(["emulate", "--qemu", "--board", "nano33ble", "--model", str(FIXTURE)]) == 2
    assert "does not run in QEMU" in capsys.readouterr().err


def test_train_and_flash_on_qemu_checks_tflm_before_training(no_tflm_tree, tmp_path):
    from tinykd.commands.train_and_flash import train_and_flash
    from tinykd.errors import TinyKDError

    with pytest.raises(TinyKDError, match="TFLM_DIR"):
        train_and_flash(str(tmp_path / "never-read.toml"), [], "mps2_an386")
