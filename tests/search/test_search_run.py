"""A tiny search end to end on digits, its resumption from the SQLite study, and the study's
handling of an interrupted trial and of changed settings."""

from __future__ import annotations

import json

import pytest

from tinykd.boards import load_board
from tinykd.config import config_from_dict
from tinykd.errors import TinyKDError
from tinykd.progress import Progress
from tinykd.search.cost import SearchLimits

# Two zoo candidates fit; ds_cnn@0.5 (arena ≈ 6 KB) does not fit the 5 KB arena cap.
LIMITS = {"max_arena_bytes": 5 * 1024}


def tiny_config(out_dir):
    return config_from_dict(
        {
            "data": {"dataset": "digits", "train_limit": 600},
            "teacher": {"model": "teacher_cnn", "epochs": 1, "width": 0.5},
            "student": {"epochs": 2, "batch_size": 64},
            "search": {
                "families": ["plain_cnn"],
                "widths": [0.25, 0.5],
                "depths": [2],
                "candidates": [{"model": "ds_cnn", "width": 0.5}],
                "rungs": 2,
                "reduction_factor": 2,
            },
            "output": {"dir": str(out_dir)},
        }
    )


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    from tinykd.search.run import run_search

    out_dir = tmp_path_factory.mktemp("search") / "out"
    config = tiny_config(out_dir)
    limits = SearchLimits(load_board("nano33ble"), **LIMITS)
    state, data, row = run_search(config, limits, 10, Progress(quiet=True))
    return out_dir, config, limits, state, row


def test_search_writes_front_candidates_and_a_run_directory(searched):
    out_dir, _, _, state, row = searched
    figures = {c["candidate"]: c for c in json.loads((out_dir / "candidates.json").read_text())}
    assert set(figures) == {"plain_cnn@0.25", "plain_cnn@0.5", "ds_cnn@0.5"}
    dropped = figures["ds_cnn@0.5"]
    assert dropped["trials"] == [] and dropped["dropped"][0].startswith("arena ")
    # rung 1 (1 epoch) trains both survivors, rung 2 (2 epochs) the better half: one
    assert [len(figures[n]["trials"]) for n in ("plain_cnn@0.25", "plain_cnn@0.5")] in (
        [2, 1],
        [1, 2],
    )
    summary = json.loads((out_dir / "search.json").read_text())
    assert summary["rung_epochs"] == [1, 2]
    assert summary["predicted_vs_measured"]["identical"] is True
    assert summary["chosen"]["candidate"] == state.chosen["candidate"]
    csv_lines = (out_dir / "front.csv").read_text().splitlines()
    assert csv_lines[0].startswith("candidate,int8_accuracy,arena_bytes,latency_ms,flash_bytes")
    assert (out_dir / "front.png").read_bytes().startswith(b"\x89PNG")
    # the chosen student as `tinykd run` writes a student: bench and render take it
    from tinykd.export import load_model_folder

    student = out_dir / "student"
    assert (student / "distilled.tflite").read_bytes() == row.artifact.tflite
    assert load_model_folder(student / "distilled_c").hash == row.artifact.hash
    report = json.loads((student / "report.json").read_text())
    assert report["models"][0]["role"] == "distilled"
    assert (
        f'model = "{state.chosen["candidate"].split("@")[0]}"'
        in (student / "config.toml").read_text()
    )


def test_search_resumes_from_its_study(searched, monkeypatch):
    """Run again: every trial is read back from search.db, none is trained again."""
    from tinykd.search import study
    from tinykd.search.run import run_search

    out_dir, config, limits, state, _ = searched

    def no_training(*args, **kwargs):
        raise AssertionError("a completed trial was trained again")

    monkeypatch.setattr(study, "run_trial", no_training)
    again, _, _ = run_search(config, limits, 10, Progress(quiet=True))
    assert again.chosen == state.chosen
    assert sorted((t.candidate, t.rung) for t in again.trials) == sorted(
        (t.candidate, t.rung) for t in state.trials
    )


def test_interrupted_trial_is_failed_and_settings_are_checked(tmp_path):
    import optuna

    from tinykd.search.study import open_rung

    storage = f"sqlite:///{tmp_path / 'search.db'}"
    study = open_rung(storage, 0, "settings-a")
    study.ask()  # a trial cut off mid-training stays RUNNING in the database
    resumed = open_rung(storage, 0, "settings-a")
    states = [t.state for t in resumed.get_trials()]
    assert states == [optuna.trial.TrialState.FAIL]
    with pytest.raises(TinyKDError, match="holds a search with other settings"):
        open_rung(storage, 0, "settings-b")


def test_rung_epochs():
    from tinykd.search.study import rung_epochs

    assert rung_epochs(27, 3, 3) == [3, 9, 27]
    assert rung_epochs(12, 3, 3) == [1, 4, 12]
    assert rung_epochs(2, 3, 2) == [1, 1, 2]  # never below one epoch


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--board", "nano33bel"], "nano33ble"),
        (["--board", "nano33ble", "--max-arena", "lots"], "--max-arena 'lots'"),
        (["--board", "nano33ble", "--budget-minutes", "0"], "--budget-minutes must be positive"),
    ],
)
def test_bad_arguments_are_one_error(arguments, message, capsys):
    from tinykd.cli import main

    assert main(["search", *arguments]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and message in error and "Traceback" not in error


def test_clock_budget_and_eta():
    from tinykd.search.study import Clock

    clock = Clock(budget_seconds=10.0)
    assert clock.fits("a", 100)  # nothing measured yet: the first trial always runs
    assert clock.eta(["a"], 2, []) == "ETA after the first trial"
    clock.seconds_per_epoch.update({"a": 4.0, "b": 2.0})
    assert clock.fits("a", 2) and not clock.fits("a", 3)  # 8 s fit in 10, 12 s do not
    assert clock.estimate("c", 2) == pytest.approx(6.0)  # unseen: the mean pace, 3 s/epoch
    # this rung: a (2 epochs, 8 s) and c (6 s); a later rung: 2 trials of 4 epochs (12 s each)
    assert clock.eta(["a", "c"], 2, [(2, 4)]) == "ETA 0m38s"
