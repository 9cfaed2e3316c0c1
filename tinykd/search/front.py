"""The Pareto front over (int8 accuracy ↑, arena ↓, latency ↓, flash ↓), and the choice.

A point is on the front when no other point is at least as good in every objective and
better in one. Points are dictionaries holding the objectives' keys.
"""

from __future__ import annotations

from collections.abc import Sequence

# (key, "max" or "min"): what a search compares.
OBJECTIVES: tuple[tuple[str, str], ...] = (
    ("int8_accuracy", "max"),
    ("arena_bytes", "min"),
    ("latency_ms", "min"),
    ("flash_bytes", "min"),
)


def _oriented(point: dict, objectives) -> tuple[float, ...]:
    """The objectives as values to maximize."""
    return tuple(point[key] if sense == "max" else -point[key] for key, sense in objectives)


def dominates(first: dict, second: dict, objectives=OBJECTIVES) -> bool:
    """``first`` is at least as good as ``second`` everywhere and better somewhere."""
    a, b = _oriented(first, objectives), _oriented(second, objectives)
    return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))


def pareto_ranks(points: Sequence[dict], objectives=OBJECTIVES) -> list[int]:
    """Non-dominated sorting: rank 0 is the front, rank 1 the front of what is left, …"""
    ranks = [-1] * len(points)
    left = set(range(len(points)))
    rank = 0
    while left:
        layer = {
            i
            for i in left
            if not any(dominates(points[j], points[i], objectives) for j in left if j != i)
        }
        for i in layer:
            ranks[i] = rank
        left -= layer
        rank += 1
    return ranks


def pareto_front(points: Sequence[dict], objectives=OBJECTIVES) -> list[dict]:
    """The non-dominated points, most accurate first (then the smaller arena)."""
    ranks = pareto_ranks(points, objectives)
    front = [point for point, rank in zip(points, ranks) if rank == 0]
    return sorted(front, key=lambda p: _oriented(p, objectives), reverse=True)


def promote(points: Sequence[dict], keep: int, objectives=OBJECTIVES) -> list[dict]:
    """The ``keep`` points that go on to the next rung: by Pareto rank, then accuracy.

    Ranking by front rather than by accuracy alone keeps a small, slightly less accurate
    student alive when it is on the front; the accuracy order decides within a rank."""
    ranks = pareto_ranks(points, objectives)
    order = sorted(
        range(len(points)),
        key=lambda i: (ranks[i], tuple(-v for v in _oriented(points[i], objectives))),
    )
    return [points[i] for i in order[:keep]]


def choose(front: Sequence[dict]) -> dict:
    """The student to deploy: the most accurate on the front; ties go to the smaller arena,
    then the lower latency and flash (every point of the front already fits the limits)."""
    if not front:
        raise ValueError("an empty front has no choice")
    return max(front, key=lambda p: _oriented(p, OBJECTIVES))
