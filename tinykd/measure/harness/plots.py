"""PNG plots of a benchmark report (matplotlib, headless): trade-off and confusion matrix."""

from __future__ import annotations

import io

NOTE = {"textcoords": "offset points", "xytext": (8, -12), "fontsize": 8}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(figure)
    return buffer.getvalue()


def tradeoff_points(report: dict) -> list[dict]:
    """One point per model and place: accuracy, latency (ms), SRAM (bytes), estimated?"""
    points = []
    for model in report["models"]:
        estimate, fit = model.get("estimate"), model.get("fit")
        if estimate and fit:
            points.append(
                {
                    "name": model["name"],
                    "label": f"{model['name']} (host accuracy, estimated latency/SRAM)",
                    "accuracy": model["host"]["accuracy"],
                    "latency_ms": estimate["latency_ms"],
                    "sram": fit["sram_needed_bytes"],
                    "measured": False,
                }
            )
        device = model.get("device")
        if device and device.get("accuracy") is not None and device["latency"].get("samples"):
            estimated = device["latency"].get("estimated")
            points.append(
                {
                    "name": model["name"],
                    "label": f"{model['name']} on the device"
                    + (" (estimated latency)" if estimated else ""),
                    "accuracy": device["accuracy"],
                    "latency_ms": device["latency"]["median_ms"],
                    "sram": device["memory"].get("sram_bytes"),
                    "measured": True,
                }
            )
    return points


def tradeoff_png(report: dict) -> bytes | None:
    """Accuracy against latency and against SRAM, student and teacher side by side."""
    points = tradeoff_points(report)
    if not points:
        return None
    pyplot = _pyplot()
    figure, (by_latency, by_sram) = pyplot.subplots(1, 2, figsize=(11, 4.2))
    colors = pyplot.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, point in enumerate(points):
        style = {
            "color": colors[index % len(colors)],
            "marker": "o" if point["measured"] else "s",
            "s": 70,
            "facecolors": colors[index % len(colors)] if point["measured"] else "none",
            "label": point["label"],
        }
        by_latency.scatter(point["latency_ms"], 100 * point["accuracy"], **style)
        if point["measured"]:
            by_latency.annotate(
                point["name"], (point["latency_ms"], 100 * point["accuracy"]), **NOTE
            )
        if point["sram"] is not None:
            by_sram.scatter(point["sram"] / 1024, 100 * point["accuracy"], **style)
            if point["measured"]:
                by_sram.annotate(
                    point["name"], (point["sram"] / 1024, 100 * point["accuracy"]), **NOTE
                )
    by_latency.set_xscale("log")
    by_latency.set_xlabel("latency per inference, ms (median)")
    by_sram.set_xlabel("SRAM, KiB")
    for axis in (by_latency, by_sram):
        axis.set_ylabel("top-1 accuracy, %")
        axis.grid(True, alpha=0.3)
        axis.margins(0.15)
    by_latency.legend(fontsize=7, loc="lower right")
    figure.suptitle("Accuracy vs latency vs SRAM (filled: on the device; hollow: host + estimates)")
    return _png(figure)


def confusion_png(matrix: list[list[int]], labels: list[str], title: str) -> bytes:
    pyplot = _pyplot()
    size = max(4.0, 0.55 * len(labels) + 2)
    figure, axis = pyplot.subplots(figsize=(size, size))
    axis.imshow(matrix, cmap="Blues")
    ticks = range(len(labels))
    axis.set_xticks(ticks, labels, rotation=45, ha="right", fontsize=8)
    axis.set_yticks(ticks, labels, fontsize=8)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    peak = max(max(row) for row in matrix) or 1
    for row, values in enumerate(matrix):
        for column, value in enumerate(values):
            axis.text(
                column,
                row,
                str(value),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if value > peak / 2 else "black",
            )
    axis.set_title(title)
    return _png(figure)
