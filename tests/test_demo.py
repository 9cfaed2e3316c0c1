"""``tinykd demo --quick`` end to end on digits, through the real command line."""

from __future__ import annotations

import json
import re
import subprocess
import sys


def test_quick_demo_on_digits_writes_a_complete_run(tmp_path):
    out = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tinykd.cli",
            "demo",
            "--quick",
            "--dataset",
            "digits",
            "--out",
            str(out),
            "--set",
            "teacher.cache=false",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "[5] int8 quantization" in result.stdout
    assert "Traceback" not in result.stderr
    report = json.loads((out / "report.json").read_text())
    roles = [model["role"] for model in report["models"]]
    assert roles == ["teacher", "scratch", "distilled"]
    for model in report["models"]:
        assert 0.5 < model["int8_accuracy"] <= 1.0, model
        assert abs(model["int8_accuracy"] - model["float_accuracy"]) < 0.05
        assert (
            model["arena_bytes"] > 0
            and model["tflite_bytes"] == (out / f"{model['role']}.tflite").stat().st_size
        )
    for role in ("scratch", "distilled"):
        assert sorted(p.name for p in (out / f"{role}_c").iterdir()) == [
            "artifact.json",
            "model.tflite",
            "model_data.cc",
            "model_data.h",
            "model_settings.h",
            "op_resolver.h",
        ]
        # the arena policy, by hand: host minimum + max(512, 10 %), rounded up to 16
        minimum = next(m for m in report["models"] if m["role"] == role)["arena_bytes"]
        firmware_arena = (minimum + max(512, minimum // 10) + 15) // 16 * 16
        settings = (out / f"{role}_c" / "model_settings.h").read_text()
        assert f"#define TKD_ARENA_SIZE {firmware_arena}\n" in settings
        assert f"#define TKD_ARENA_MIN_HOST_BYTES {minimum}\n" in settings
        manifest = json.loads((out / f"{role}_c" / "artifact.json").read_text())
        assert manifest["arena"]["size_bytes"] == firmware_arena
    assert "| plain_cnn | distilled |" in (out / "report.md").read_text()
    assert not list(out.rglob("*.tmp")), "no half-written files"
    assert re.search(r"\| teacher_vgg \| teacher \|", result.stdout)


def test_bad_config_key_is_one_readable_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tinykd.cli", "run", "--set", "student.epoch=3"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert (
        "error: Invalid configuration" in result.stderr
        and "did you mean 'student.epochs'" in result.stderr
    )
    assert "Traceback" not in result.stderr
