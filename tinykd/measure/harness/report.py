"""The benchmark report: report.json, report.md, report.html, PNG plots, per-sample CSV.

The Markdown and the HTML are rendered from the same list of blocks, so they always say
the same thing. Every file is written atomically (temporary file, then rename).
"""

from __future__ import annotations

import copy
import csv
import html
import io
from pathlib import Path

from tinykd.io import write_bytes_atomic, write_json_atomic, write_text_atomic
from tinykd.measure.harness.plots import confusion_png, tradeoff_png

MAX_LISTED_FAILURES = 50


def _bytes(value) -> str:
    return f"{value:,}" if isinstance(value, int) else "–"


def _percent(value) -> str:
    return f"{value:.2%}" if isinstance(value, float) else "–"


def milliseconds(value: float) -> str:
    """Three significant digits, without exponents: 0.0123, 17, 1,088."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _latency(latency: dict | None) -> str:
    if not latency or not latency.get("samples"):
        return "–"
    text = " / ".join(milliseconds(latency[key]) for key in ("median_ms", "p90_ms", "p99_ms"))
    if latency.get("estimated"):
        return text + " (estimated)"
    unit = latency.get("unit", "")
    if unit == "instructions" and latency.get("median_ticks"):
        # QEMU -icount: an instruction count, not cycles; the ms are virtual time (1 ns each)
        return f"{latency['median_ticks']:,.0f} instructions per inference ({text} at 1 ns each)"
    return text + (f" (from {unit} counts)" if unit not in ("cycles", "us", "") else "")


def _results_rows(report: dict) -> list[list[str]]:
    rows = []
    for model in report["models"]:
        estimate = model.get("estimate")
        fit = model.get("fit", {})
        rows.append(
            [
                f"{model['name']} ({model['role']})",
                "host, TFLM interpreter",
                _percent(model["host"]["accuracy"]),
                "–",
                f"{milliseconds(estimate['latency_ms'])} (estimated)" if estimate else "–",
                _bytes(fit.get("sram_needed_bytes")) + (" (estimated)" if fit else ""),
                _bytes(fit.get("flash_needed_bytes")) + (" (estimated)" if fit else ""),
            ]
        )
        device = model.get("device")
        if device:
            memory = device["memory"]
            rows.append(
                [
                    f"{model['name']} ({model['role']})",
                    f"device {device['device']['name'] if device['device'] else ''} ({device['url']})",
                    _percent(device.get("accuracy")),
                    f"{_percent(device.get('agreement_exact'))} exact, "
                    f"{_percent(device.get('agreement_class'))} same class",
                    _latency(device["latency"]),
                    _bytes(memory.get("sram_bytes")),
                    _bytes(memory.get("flash_bytes")),
                ]
            )
        else:
            rows.append(
                [
                    f"{model['name']} ({model['role']})",
                    "device",
                    model.get("device_note") or "not run",
                    "",
                    "",
                    "",
                    "",
                ]
            )
    return rows


def _accounting_rows(report: dict) -> list[list[str]]:
    rows = []
    for model in report["models"]:
        device = model.get("device")
        if not device:
            continue
        samples = device["samples"]
        events = samples["events"]
        rows.append(
            [
                model["name"],
                str(samples["total"]),
                str(samples["sent"]),
                str(samples["answered"]),
                str(samples["retried"]),
                str(samples["failed"]),
                str(samples["attempts"]),
                str(events.get("resyncs", 0)),
                str(events.get("resets", 0)),
                str(events.get("reconnects", 0)),
            ]
        )
    return rows


def _failure_items(report: dict) -> list[str]:
    items = []
    for model in report["models"]:
        device = model.get("device")
        if not device:
            continue
        samples = device["samples"]
        if samples["aborted"]:
            items.append(f"{model['name']}: run stopped early: {samples['aborted']}")
        for kind, count in samples["problems_by_kind"].items():
            items.append(f"{model['name']}: {count} failed attempt(s) of kind '{kind}'")
        failures = samples["failures"]
        for failure in failures[:MAX_LISTED_FAILURES]:
            items.append(
                f"{model['name']}: sample {failure['index']} failed after "
                f"{failure['attempts']} attempt(s): {failure['reason']}"
            )
        if len(failures) > MAX_LISTED_FAILURES:
            items.append(
                f"{model['name']}: … and {len(failures) - MAX_LISTED_FAILURES} more "
                f"(samples-{model['role']}.csv lists every sample)"
            )
    return items


def _link_rows(report: dict) -> list[list[str]]:
    rows = []
    for model in report["models"]:
        device = model.get("device")
        if device:
            link = device["link"]
            rows.append(
                [
                    model["name"],
                    link["transport"],
                    str(link["baud"]),
                    f"{link['input_bytes_per_second']:,.0f}",
                    f"{link['fraction_of_link']:.1%}"
                    if link["fraction_of_link"] <= 1.05
                    else "n/a: faster than the baud rate (an unpaced link)",
                    f"{link['samples_per_second']:.2f}",
                    link["input_check"],
                ]
            )
    return rows


def report_blocks(report: dict, images: dict[str, str]) -> list[tuple]:
    """The report as ("heading"|"text"|"table"|"list"|"image", …) blocks."""
    dataset = report["dataset"]
    board = report.get("board")
    student = report["models"][0]
    blocks: list[tuple] = [
        (
            "heading",
            f"tinykd benchmark: {student['name']} on {board['title'] if board else 'a device'}",
        ),
        (
            "text",
            f"{dataset['name']} ({dataset['source']}), {dataset['samples']:,} test samples. "
            f"Host reference: {student['host']['runtime']}. Latency: median / p90 / p99 in ms; "
            "values marked (estimated) come from the board profile's latency model, not a "
            "clock on hardware.",
        ),
        (
            "table",
            [
                "model",
                "where",
                "accuracy",
                "agreement with host int8",
                "latency ms",
                "SRAM bytes",
                "flash bytes",
            ],
            _results_rows(report),
        ),
    ]
    accounting = _accounting_rows(report)
    if accounting:
        blocks += [
            ("heading2", "Samples"),
            (
                "table",
                [
                    "model",
                    "total",
                    "sent",
                    "answered",
                    "retried",
                    "failed",
                    "attempts",
                    "resyncs",
                    "resets",
                    "reconnects",
                ],
                accounting,
            ),
        ]
        failures = _failure_items(report)
        blocks.append(("list", failures) if failures else ("text", "Every sample was answered."))
        blocks += [
            ("heading2", "Serial link"),
            (
                "table",
                [
                    "model",
                    "input path",
                    "baud",
                    "input bytes/s",
                    "of the link's byte rate",
                    "samples/s",
                    "corrupted input caught by",
                ],
                _link_rows(report),
            ),
        ]
        for model in report["models"]:
            link = (model.get("device") or {}).get("link", {})
            if link.get("transport_reason"):
                blocks.append(
                    (
                        "text",
                        f"{model['name']}: input path {link['transport']} because "
                        f"{link['transport_reason']}; device identity: {link['identity_check']}.",
                    )
                )
    for model in report["models"]:
        memory = (model.get("device") or {}).get("memory", {})
        if memory.get("source"):
            blocks.append(("text", f"Memory of {model['name']} on the device: {memory['source']}."))
    if images:
        blocks.append(("heading2", "Plots"))
        blocks += [("image", path, alt) for alt, path in images.items()]
    if report["notes"]:
        blocks += [("heading2", "Notes"), ("list", report["notes"])]
    return blocks


def render_markdown(blocks: list[tuple]) -> str:
    out = []
    for block in blocks:
        kind = block[0]
        if kind == "heading":
            out.append(f"# {block[1]}")
        elif kind == "heading2":
            out.append(f"## {block[1]}")
        elif kind == "text":
            out.append(block[1])
        elif kind == "table":
            header, rows = block[1], block[2]
            lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += [
                "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows
            ]
            out.append("\n".join(lines))
        elif kind == "list":
            out.append("\n".join(f"- {item}" for item in block[1]))
        elif kind == "image":
            out.append(f"![{block[2]}]({block[1]})")
    return "\n\n".join(out) + "\n"


def render_html(blocks: list[tuple], title: str) -> str:
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:70em;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.3em .6em}"
        "th{background:#eee}img{max-width:100%}</style></head><body>",
    ]
    for block in blocks:
        kind = block[0]
        if kind in ("heading", "heading2"):
            tag = "h1" if kind == "heading" else "h2"
            out.append(f"<{tag}>{html.escape(block[1])}</{tag}>")
        elif kind == "text":
            out.append(f"<p>{html.escape(block[1])}</p>")
        elif kind == "table":
            head = "".join(f"<th>{html.escape(cell)}</th>" for cell in block[1])
            body = "".join(
                "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
                for row in block[2]
            )
            out.append(f"<table><tr>{head}</tr>{body}</table>")
        elif kind == "list":
            out.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in block[1]) + "</ul>")
        elif kind == "image":
            out.append(f'<p><img src="{html.escape(block[1])}" alt="{html.escape(block[2])}"></p>')
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _csv_text(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_report(report: dict, out_dir: str | Path, plots: bool = True) -> Path:
    """All report files into ``out_dir``; returns the folder."""
    out_dir = Path(out_dir)
    report = copy.deepcopy(report)
    for model in report["models"]:
        device = model.get("device")
        if device and device.get("per_sample"):
            write_text_atomic(
                out_dir / f"samples-{model['role']}.csv", _csv_text(device.pop("per_sample"))
            )
    images: dict[str, str] = {}
    if plots:
        tradeoff = tradeoff_png(report)
        if tradeoff:
            write_bytes_atomic(out_dir / "tradeoff.png", tradeoff)
            images["accuracy vs latency vs SRAM"] = "tradeoff.png"
        for model in report["models"]:
            device = model.get("device")
            if device and device.get("confusion_matrix"):
                name = f"confusion-{model['role']}.png"
                write_bytes_atomic(
                    out_dir / name,
                    confusion_png(
                        device["confusion_matrix"],
                        report["dataset"]["class_names"],
                        f"{model['name']} on the device",
                    ),
                )
                images[f"confusion matrix of {model['name']} on the device"] = name
    write_json_atomic(out_dir / "report.json", report)
    blocks = report_blocks(report, images)
    write_text_atomic(out_dir / "report.md", render_markdown(blocks))
    write_text_atomic(out_dir / "report.html", render_html(blocks, blocks[0][1]))
    return out_dir
