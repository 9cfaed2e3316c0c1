"""The README's search figures are the committed bench results, never typed by hand."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_readme_search_tables_match_the_committed_quick_results():
    path = ROOT / "bench" / "results" / "search_boards_quick.json"
    if not path.exists():
        pytest.skip(f"{path.name} has not been committed")
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from search_boards import report
    finally:
        sys.path.remove(str(ROOT / "bench"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for line in report(json.loads(path.read_text())).splitlines()[1:]:
        assert line in readme, f"README lacks this line of {path.name}: {line}"
