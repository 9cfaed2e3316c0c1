"""README figures come from the committed bench results, never typed by hand (issue 16).

Every ``bench/results/*.json`` names the command that wrote it; that bench script builds
its README table from the JSON alone (``report_table(summary)``), and every line of the
table must appear in the README as it is.

Tables still typed by hand, from benches that predate JSON output (regenerate them next):
distillation methods (bench/distill_methods.py), strategies (bench/strategies_vs_scratch.py),
compression (bench/compress_student.py, now writing JSON), beyond classification
(bench/tasks.py, now writing JSON), the emulated board (bench/emulated_board.py), QEMU
(bench/qemu_mps2.py), and the prose figures and tables of kd_sweep, teacher_checkpoints,
harness_throughput, arena_minimum.
"""

from __future__ import annotations

import importlib
import json
import shlex
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
COMMITTED = sorted(RESULTS.glob("*.json"))


def bench_script(summary: dict) -> str:
    """The bench script a result's command ran (``python bench/<script>.py …``)."""
    words = shlex.split(summary["command"])
    assert words[0] == "python" and words[1].startswith("bench/"), summary["command"]
    return Path(words[1]).stem


def report_table(script: str):
    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module(script).report_table
    finally:
        sys.path.remove(str(BENCH))


def test_the_tables_with_results_are_committed():
    written = {path.stem for path in COMMITTED}
    assert {"distill_vs_scratch", "harness_faults", "malformed_inputs"} <= written


@pytest.mark.parametrize("path", COMMITTED, ids=[path.stem for path in COMMITTED])
def test_readme_tables_match_the_committed_results(path):
    summary = json.loads(path.read_text(encoding="utf-8"))
    table = report_table(bench_script(summary))(summary)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = table.splitlines()
    assert len(lines) >= 3, f"{path.name}: a table needs a header, a rule and a row"
    for line in lines:
        assert line in readme, f"README lacks this line of {path.name}: {line}"
