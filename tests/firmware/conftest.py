"""Shared fixtures of the firmware tests."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
from fw_helpers import FAKE_TOOL

from tinykd.export import ArenaPlan, Int8Artifact
from tinykd.firmware.paths import firmware_dir

FIXTURE_TFLITE = Path(__file__).parent / "fixtures" / "digits_ds_cnn.tflite"


@pytest.fixture(scope="session")
def fixture_tflite() -> bytes:
    return FIXTURE_TFLITE.read_bytes()


@pytest.fixture(scope="session")
def artifact(fixture_tflite) -> Int8Artifact:
    """The fixture model as an artifact (digits, 10 classes, an 8 KB arena: 7,680 + 512)."""
    return Int8Artifact(
        fixture_tflite,
        name="digits",
        labels=list("0123456789"),
        arena=ArenaPlan(minimum_bytes=7680, margin_bytes=512),
    )


def tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def firmware_untouched():
    """Fails the test if it changed anything under firmware/."""
    before = tree_digest(firmware_dir())
    yield
    assert tree_digest(firmware_dir()) == before, "firmware/ was modified"


@pytest.fixture
def fake_tools(tmp_path, monkeypatch):
    """arduino-cli, pio and idf.py stand-ins on PATH; returns a reader of their calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("arduino-cli", "pio", "idf.py"):
        path = bin_dir / name
        path.write_text(FAKE_TOOL.format(python=sys.executable))
        path.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}")
    monkeypatch.setenv("FAKE_LOG", str(log))
    monkeypatch.setenv("FAKE_CORES", "arduino:mbed_nano,esp32:esp32")
    monkeypatch.setenv("FAKE_LIBS", "Chirale_TensorFLowLite,TensorFlowLite_ESP32")

    def calls() -> list[list[str]]:
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return calls
