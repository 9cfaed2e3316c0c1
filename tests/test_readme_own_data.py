"""The README section "Your data, your teacher" runs as written, on the small data it makes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Your data, your teacher"


def section_blocks() -> list[tuple[str, str]]:
    """(language, body) of every fenced block in the section."""
    text = README.read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return re.findall(r"```(\w+)\n(.*?)```", text[start : end if end > 0 else None], re.S)


def test_readme_own_data_section_runs_as_written(tmp_path):
    pytest.importorskip("keras", minversion="3")
    commands = []
    for language, body in section_blocks():
        if language in ("python", "toml"):  # a file, named by its first line: "# name"
            name = body.splitlines()[0].lstrip("#").strip()
            (tmp_path / name).write_text(body)
        elif language == "sh":
            commands += [line for line in body.splitlines() if line.strip()]
    assert [c.split()[:2] for c in commands] == [
        ["python", "make_example.py"],
        ["tinykd", "run"],
        ["tinykd", "bench"],
        ["tinykd", "export"],
    ]
    # `tinykd` as this checkout's command line (the installed script may point elsewhere).
    script = f'set -e\ntinykd() {{ "{sys.executable}" -m tinykd.cli "$@"; }}\n' + "\n".join(
        commands
    )
    root = str(Path(__file__).resolve().parents[1])
    environment = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1200,
        env=environment,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "Traceback" not in result.stderr
    assert "loaded " in out and "my_teacher.keras (Keras 3 teacher, " in out
    assert "[2] Teacher (loaded from teacher.path)" in out
    assert "distills from its log-probabilities" in out
    assert "labels: 0=0, 1=1, 2=2" in out
    report = json.loads((tmp_path / "runs" / "mine" / "report.json").read_text())
    assert report["dataset"]["labels"] == [str(digit) for digit in range(10)]
    assert report["dataset"]["test"] == 197  # x[1600:] of the 1,797 digits
    assert [model["role"] for model in report["models"]] == ["teacher", "scratch", "distilled"]
    bench = json.loads((tmp_path / "runs" / "bench" / "report.json").read_text())
    assert "my_folder" in json.dumps(bench)
    assert "labels (report.json of its run): 0=0, 1=1" in out
    assert (tmp_path / "my_firmware_model" / "model_settings.h").exists()
