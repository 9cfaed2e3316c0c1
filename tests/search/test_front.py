"""The Pareto front, ranks, promotion and the choice, on hand-made points; the front is
also checked against Optuna's own (an independent implementation)."""

from __future__ import annotations

import pytest

from tinykd.search.front import OBJECTIVES, choose, dominates, pareto_front, pareto_ranks, promote


def point(name, accuracy, arena, latency, flash):
    return {
        "candidate": name,
        "int8_accuracy": accuracy,
        "arena_bytes": arena,
        "latency_ms": latency,
        "flash_bytes": flash,
    }


# By hand: "big" is the most accurate; "small" the cheapest; "mid" trades between them;
# "worse_mid" loses to "mid" everywhere; "slow_twin" equals "mid" but is slower;
# "worst" is dominated by everything.
POINTS = [
    point("big", 0.95, 40_000, 20.0, 200_000),
    point("small", 0.80, 4_000, 2.0, 80_000),
    point("mid", 0.90, 10_000, 5.0, 100_000),
    point("worse_mid", 0.88, 12_000, 6.0, 110_000),
    point("slow_twin", 0.90, 10_000, 7.0, 100_000),
    point("worst", 0.70, 50_000, 30.0, 300_000),
]


def names(points):
    return [p["candidate"] for p in points]


def test_front_by_hand():
    assert names(pareto_front(POINTS)) == ["big", "mid", "small"]  # most accurate first


def test_ranks_by_hand():
    ranks = dict(zip(names(POINTS), pareto_ranks(POINTS)))
    # worse_mid and slow_twin are beaten only by mid (rank 0); worst by everything else
    assert ranks == {
        "big": 0,
        "small": 0,
        "mid": 0,
        "worse_mid": 1,
        "slow_twin": 1,
        "worst": 2,
    }


def test_equal_points_do_not_dominate_each_other():
    a, b = point("a", 0.9, 1, 1.0, 1), point("b", 0.9, 1, 1.0, 1)
    assert not dominates(a, b) and not dominates(b, a)
    assert names(pareto_front([a, b])) == ["a", "b"]


def test_promotion_prefers_the_front_then_accuracy():
    # 3 of 6 go on: the whole front, even "small" which is less accurate than worse_mid
    assert sorted(names(promote(POINTS, 3))) == ["big", "mid", "small"]
    # 4: the front, then the most accurate of rank 1 (slow_twin 0.90 > worse_mid 0.88)
    assert names(promote(POINTS, 4))[-1] == "slow_twin"


def test_choice_is_the_most_accurate_then_the_smaller_arena():
    assert choose(pareto_front(POINTS))["candidate"] == "big"
    tie = [point("wide", 0.9, 9_000, 1.0, 1), point("narrow", 0.9, 8_000, 1.0, 1)]
    assert choose(tie)["candidate"] == "narrow"
    with pytest.raises(ValueError):
        choose([])


def test_front_matches_optuna():
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=[sense + "imize" for _, sense in OBJECTIVES])
    for p in POINTS:
        study.add_trial(
            optuna.trial.create_trial(
                values=[p[key] for key, _ in OBJECTIVES],
                user_attrs={"candidate": p["candidate"]},
            )
        )
    theirs = sorted(t.user_attrs["candidate"] for t in study.best_trials)
    assert sorted(names(pareto_front(POINTS))) == theirs
