"""What a search writes beside the chosen student: the front (Markdown, CSV, PNG), every
candidate's figures (JSON) and a summary (``search.json``)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from tinykd.io import write_bytes_atomic, write_json_atomic, write_text_atomic

FRONT_COLUMNS = (
    ("candidate", "candidate"),
    ("int8_accuracy", "int8 acc (validation, TFLM)"),
    ("arena_bytes", "arena B"),
    ("latency_ms", "latency ms"),
    ("flash_bytes", "flash B"),
    ("tflite_bytes", ".tflite B"),
    ("macs", "MACs"),
)


def front_rows(state) -> list[dict]:
    """The front's points with the rest of each candidate's cost."""
    rows = []
    for point in state.front:
        cost = state.costs[point["candidate"]]
        rows.append({**point, "tflite_bytes": cost.tflite_bytes, "macs": cost.macs})
    return rows


def _cell(key: str, value) -> str:
    if key == "int8_accuracy":
        return f"{value:.2%}"
    if key == "latency_ms":
        return f"{value:.2f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def front_markdown(state) -> str:
    chosen = state.chosen["candidate"] if state.chosen else None
    lines = [
        "| " + " | ".join(title for _, title in FRONT_COLUMNS) + " |",
        "|" + "---|" * len(FRONT_COLUMNS),
    ]
    for row in front_rows(state):
        cells = [_cell(key, row[key]) for key, _ in FRONT_COLUMNS]
        if row["candidate"] == chosen:
            cells[0] = f"**{cells[0]}** (chosen)"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def front_csv(state) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([key for key, _ in FRONT_COLUMNS] + ["chosen"])
    chosen = state.chosen["candidate"] if state.chosen else None
    for row in front_rows(state):
        writer.writerow([row[key] for key, _ in FRONT_COLUMNS] + [row["candidate"] == chosen])
    return buffer.getvalue()


def candidate_figures(state) -> list[dict]:
    """Every candidate: its cost, why it was dropped, each trial, and its place."""
    on_front = {point["candidate"] for point in state.front}
    figures = []
    for candidate in state.candidates:
        name = candidate.name
        cost = state.costs.get(name)
        figures.append(
            {
                "candidate": name,
                "source": candidate.source,
                "cost": cost.as_dict() if cost else None,
                "dropped": state.dropped.get(name, []),
                "trials": [
                    t.__dict__
                    for t in sorted(state.trials, key=lambda t: t.rung)
                    if t.candidate == name
                ],
                "on_front": name in on_front,
                "chosen": bool(state.chosen) and state.chosen["candidate"] == name,
            }
        )
    return figures


def front_plot(state) -> bytes:
    """int8 accuracy against arena: every trial of every rung, the last rung's front joined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    last = max(t.rung for t in state.trials)
    figure, axes = pyplot.subplots(figsize=(6.4, 4.2))
    for rung in range(last + 1):  # earlier rungs (shorter training) paler
        points = [t for t in state.trials if t.rung == rung]
        axes.scatter(
            [state.costs[t.candidate].arena_bytes / 1024 for t in points],
            [100 * t.int8_accuracy for t in points],
            color=str(0.85 - 0.3 * rung / max(1, last)),
            label=f"rung {rung + 1} ({state.rung_epochs[rung]} epochs)",
        )
    front = sorted(state.front, key=lambda p: p["arena_bytes"])
    axes.plot(
        [p["arena_bytes"] / 1024 for p in front],
        [100 * p["int8_accuracy"] for p in front],
        "o-",
        color="tab:blue",
        label="Pareto front (accuracy, arena, latency, flash)",
    )
    for p in front:
        axes.annotate(
            f"{p['candidate']}\n{p['latency_ms']:.1f} ms "
            f"({state.costs[p['candidate']].latency_label})",
            (p["arena_bytes"] / 1024, 100 * p["int8_accuracy"]),
            textcoords="offset points",
            xytext=(6, -10),
            fontsize=7,
        )
    chosen = state.chosen
    axes.scatter(
        [chosen["arena_bytes"] / 1024],
        [100 * chosen["int8_accuracy"]],
        s=160,
        facecolors="none",
        edgecolors="tab:red",
        label=f"chosen: {chosen['candidate']}",
    )
    axes.set_xlabel("tensor arena, KiB (firmware's, arena policy)")
    axes.set_ylabel("int8 accuracy, % (validation, TFLM)")
    axes.set_title(f"tinykd search on {state.limits.board.title}")
    axes.legend(fontsize=7, loc="lower right")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    pyplot.close(figure)
    return buffer.getvalue()


def summary(state, row) -> dict:
    cost = state.costs[state.chosen["candidate"]]
    return {
        "board": state.limits.board.name,
        "limits": state.limits.describe(),
        "rung_epochs": state.rung_epochs,
        "reduction_factor": state.config.search.reduction_factor,
        "candidates": len(state.candidates),
        "dropped": len(state.dropped),
        "trials": len(state.trials),
        "search_seconds": round(state.seconds, 1),
        "teacher_seconds": round(state.teacher_seconds, 1),
        "budget_reached": state.budget_reached,
        "chosen": {
            **state.chosen,
            "test_int8_accuracy": row.int8_accuracy,
            "test_float_accuracy": row.float_accuracy,
            "macs": cost.macs,
            "params": cost.params,
            "run_dir": "student",
        },
        "predicted_vs_measured": {
            "tflite_bytes": [cost.tflite_bytes, row.artifact.size_bytes],
            "arena_bytes": [cost.arena_bytes, row.artifact.arena.size_bytes],
            "identical": cost.tflite_bytes == row.artifact.size_bytes
            and cost.arena_bytes == row.artifact.arena.size_bytes,
            "latency_ms": cost.latency_ms,
            "latency_source": cost.latency_source,
            "latency_ms_estimated": cost.latency_estimated_ms,
            "instructions_per_inference": cost.instructions,
        },
        "front": front_rows(state),
        "notes": state.notes,
    }


def write_search_report(state, row) -> Path:
    """front.md, front.csv, front.png, candidates.json and search.json in the search folder."""
    out_dir = Path(state.config.output.dir)
    facts = summary(state, row)
    markdown = (
        f"# tinykd search: {state.limits.board.title}\n\n"
        f"Limits: {state.limits.describe()}. Rungs of {', '.join(map(str, state.rung_epochs))} "
        f"epochs; {len(state.candidates)} candidates, {len(state.dropped)} dropped before "
        f"training, {len(state.trials)} trials in {state.seconds / 60:.1f} min.\n\n"
        + front_markdown(state)
        + f"\n\nChosen: {state.chosen['candidate']}, int8 test accuracy "
        f"{row.int8_accuracy:.2%} (exported to student/). Latency: "
        f"{state.costs[state.chosen['candidate']].latency_source}.\n"
    )
    if state.notes:
        markdown += "\n" + "\n".join(f"- {note}" for note in state.notes) + "\n"
    write_text_atomic(out_dir / "front.md", markdown)
    write_text_atomic(out_dir / "front.csv", front_csv(state))
    write_bytes_atomic(out_dir / "front.png", front_plot(state))
    write_json_atomic(out_dir / "candidates.json", candidate_figures(state))
    write_json_atomic(out_dir / "search.json", facts)
    return out_dir
