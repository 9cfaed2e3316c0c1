"""README figures come from the committed bench results, never typed by hand (issue 16)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


@pytest.mark.parametrize(
    "name",
    [
        "distill_vs_scratch",
        "distill_vs_scratch_sizes",
        "distill_vs_scratch_patience",
        "distill_vs_scratch_long",
    ],
)
def test_distillation_tables_in_the_readme_match_the_committed_results(name):
    path = RESULTS / f"{name}.json"
    if not path.exists():
        pytest.skip(f"{path.name} has not been committed")
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from distill_vs_scratch import report_table
    finally:
        sys.path.remove(str(ROOT / "bench"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for line in report_table(json.loads(path.read_text())).splitlines():
        assert line in readme, f"README lacks this line of {path.name}: {line}"
