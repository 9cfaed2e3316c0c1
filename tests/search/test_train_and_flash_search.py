"""``train-and-flash --search``: the search's chosen student goes through the same render,
build and benchmark as a ``tinykd run`` student (on the emulated board, no hardware)."""

from __future__ import annotations

import json

import pytest

TINY_SEARCH = """\
seed = 0
[data]
dataset = "digits"
train_limit = 600
[teacher]
model = "teacher_cnn"
width = 0.25
epochs = 1
[student]
epochs = 1
[search]
families = ["plain_cnn"]
widths = [0.25, 0.5]
depths = [2]
rungs = 1
[output]
dir = "{out}"
"""


@pytest.mark.slow
def test_train_and_flash_search_on_the_emulated_board(tmp_path, capsys):
    from tinykd.cli import main

    out_dir = tmp_path / "search"
    config = tmp_path / "run.toml"
    config.write_text(TINY_SEARCH.format(out=out_dir))
    arguments = ["train-and-flash", "--search", "--config", str(config), "--board", "emulated"]
    status = main([*arguments, "--max-arena", "3120", "--budget-minutes", "10"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    summary = json.loads((out_dir / "search.json").read_text())
    # plain_cnn@0.5 needs a 3,136 B arena on digits: only @0.25 (3,104 B) fits 3,120 B
    assert summary["chosen"]["candidate"] == "plain_cnn@0.25"
    assert summary["dropped"] == 1
    bench = json.loads((out_dir / "student" / "bench" / "report.json").read_text())
    assert "distilled" in json.dumps(bench)
    assert "0 failed" in captured.out
