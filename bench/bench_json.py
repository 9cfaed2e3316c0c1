"""Bench results as JSON: the figures each README table is built from.

A script that prints a README table writes ``bench/results/<name>.json`` (the command that
produced it and its figures) and builds the table with its ``report_table(summary)`` from
that JSON alone. tests/test_readme_figures.py rebuilds every table from the committed JSON
and checks that the README quotes it line for line, so no figure there is typed by hand.
"""

from __future__ import annotations

import shlex
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tinykd.io import write_json_atomic  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def command_line() -> str:
    """The command that ran this script, as the README quotes it (quoted for a shell
    where an argument needs it, e.g. a --set value with spaces or quotes)."""
    return shlex.join(["python", f"bench/{Path(sys.argv[0]).name}", *sys.argv[1:]])


def results_path(output: str | None, name: str, quick: bool) -> str:
    """``--output``, else bench/results/<name>.json; a smoke run (``--quick``) never
    replaces the committed figures: it writes to a temporary folder instead."""
    if output is not None:
        return output
    folder = Path(tempfile.mkdtemp(prefix=f"tinykd-{name}-")) if quick else RESULTS
    return str(folder / f"{name}.json")


def write_results(path: str | Path, figures: dict, earlier_command: str | None = None) -> dict:
    """Write ``{"command": …, **figures}`` to ``path`` (atomically); returns that summary.
    ``earlier_command``: the figures extend a run made by that command (``a; b``)."""
    command = command_line() if earlier_command is None else f"{earlier_command}; {command_line()}"
    summary = {"command": command, **figures}
    write_json_atomic(Path(path), summary)
    return summary
