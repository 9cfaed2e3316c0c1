"""`tinykd search` for two board profiles on Fashion-MNIST, against the MLPerf Tiny references.

    python bench/search_boards.py                  # full: Fashion-MNIST, the demo's recipe
    python bench/search_boards.py --quick          # smoke run on digits (a few minutes)

For each board profile (a board and its budgets) the search runs as `tinykd search` does:
exact int8 cost of every untrained candidate, successive halving of the survivors distilled
from the demo's teacher, the Pareto front, the chosen student exported. Then the two MLPerf
Tiny references, ResNet-8 (image classification, ``resnet8``) and DS-CNN (keyword spotting,
``dscnn_kws``), are trained the plain way (no teacher) on the same data and views for the
same number of epochs as the search's final rung, and each chosen student is compared with
them: arena and MACs ratios (chosen / reference) and int8 test accuracy difference (chosen
− reference), all in the TFLM host interpreter. Prints the figures and writes them to
bench/results/search_boards.json (search_boards_quick.json with --quick).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path

from bench_json import command_line
from common import bench_arguments, bench_config

from tinykd.boards import load_board
from tinykd.io import write_json_atomic
from tinykd.measure.latency_model import operator_work
from tinykd.models import profile_model
from tinykd.pipeline import measure_int8, train_student
from tinykd.progress import Progress
from tinykd.search.candidates import Candidate
from tinykd.search.cost import (
    QEMU_COUNTING_BOARD,
    SearchLimits,
    one_instruction_per_cycle_ms,
    parse_size,
)
from tinykd.search.run import run_search
from tinykd.search.study import with_student

RESULTS = Path(__file__).resolve().parent / "results"
REFERENCES = ("resnet8", "dscnn_kws")

# Two budgets: a roomy one (the example) and a tight one on a slower core.
PROFILES = [
    {
        "name": "nano33ble",
        "board": "nano33ble",
        "max_latency_ms": 50.0,
        "max_arena": "64KB",
        "max_flash": "128KB",
    },
    {
        "name": "pico-tight",
        "board": "pico",
        "max_latency_ms": 15.0,
        "max_arena": "8KB",
        "max_flash": "100KB",
    },
]
# --profiles half-reference: a fast core whose arena budget is half the DS-CNN reference's
# measured arena (36,480 B), the bound the issue sets for the chosen student.
EXTRA_PROFILES = {
    "half-reference": {
        "name": "half-reference",
        "board": "portenta_h7",
        "max_latency_ms": 20.0,
        "max_arena": "18240",
        "max_flash": "256KB",
    },
    # Half of ResNet-8's measured arena (48,688 B) and, with --tflm, half of its instructions
    # per inference: every candidate is counted in QEMU and the latency cap is 80,642,232 / 2
    # instructions at one per cycle of the Portenta's 480 MHz.
    "half-resnet8": {
        "name": "half-resnet8",
        "board": "portenta_h7",
        "max_latency_ms": 84.0,
        "max_arena": "24344",
        "max_flash": "256KB",
        "count_in_qemu": True,
    },
}
# Digits are 8×8: the same boards with budgets scaled to its far smaller activations.
QUICK_PROFILES = [
    {
        "name": "nano33ble",
        "board": "nano33ble",
        "max_latency_ms": 5.0,
        "max_arena": "8KB",
        "max_flash": "128KB",
    },
    {
        "name": "pico-tight",
        "board": "pico",
        "max_latency_ms": 2.0,
        "max_arena": "4KB",
        "max_flash": "100KB",
    },
]
QUICK_SETTINGS = [
    "data.max_shift=1",  # 8×8 digits: the demo's 2-pixel shifts are a quarter of the image
    "teacher.epochs=10",
    "student.epochs=8",
    # A short run keeps the hard labels too, as `tinykd demo --quick` does (function
    # matching alone needs a patient schedule).
    "distillation.hard_label_weight=1.0",
    "search.rungs=2",
    "search.reduction_factor=2",
    'search.families=["plain_cnn", "ds_cnn", "mbv2_micro"]',
    "search.widths=[0.25, 0.5, 1.0]",
]


def limits_of(profile: dict, tflm_dir: str) -> SearchLimits:
    """The profile's budgets; latency counted in QEMU for the profiles that ask for it when
    a TFLM tree is given, else estimated (the board's cycles-per-MAC model)."""
    return SearchLimits(
        board=load_board(profile["board"]),
        max_latency_ms=profile["max_latency_ms"],
        max_arena_bytes=parse_size(profile["max_arena"]),
        max_flash_bytes=parse_size(profile["max_flash"]),
        tflm_dir=(tflm_dir or None) if profile.get("count_in_qemu") else None,
    )


def train_reference(name: str, config, data, progress, artifacts: dict) -> dict:
    """A reference trained the plain way (hard labels, no teacher), full epochs, int8 in TFLM."""
    reference_config = with_student(config, Candidate(name, 1.0))
    result = train_student(reference_config, data, progress, label=f"{name} (plain)")
    row = measure_int8(
        name,
        result.model,
        data,
        reference_config,
        progress,
        result.seconds,
        result.seconds_per_epoch,
    )
    artifacts[f"{name} (plain)"] = row.artifact
    return {
        "model": name,
        "epochs": reference_config.student.epochs,
        "int8_test_accuracy": row.int8_accuracy,
        "float_test_accuracy": row.float_accuracy,
        "arena_bytes": row.artifact.arena.size_bytes,
        "tflite_bytes": row.tflite_bytes,
        "macs": profile_model(result.model).macs,
        "train_seconds": round(result.seconds, 1),
        "work": operator_work(row.artifact.tflite),
    }


def earlier_references(earlier: dict, path: Path, data, config) -> list[dict]:
    """The references of an earlier run (``earlier``, read from ``path``), refused unless
    its data and epochs are these."""
    same = earlier["data"] == {
        "name": data.name,
        "train": len(data.x_train),
        "validation": len(data.x_val),
        "test": len(data.x_test),
    } and all(ref["epochs"] == config.student.epochs for ref in earlier["references"])
    if not same:
        raise SystemExit(f"{path}: its references were trained on other data or epochs")
    return [{**ref, "from": str(path)} for ref in earlier["references"]]


def compare(chosen: dict, reference: dict) -> dict:
    return {
        "reference": reference["model"],
        "arena_ratio": chosen["arena_bytes"] / reference["arena_bytes"],
        "macs_ratio": chosen["macs"] / reference["macs"],
        "int8_accuracy_difference": chosen["test_int8_accuracy"] - reference["int8_test_accuracy"],
        "meets_issue_target": chosen["arena_bytes"] <= 0.5 * reference["arena_bytes"]
        and chosen["macs"] <= 0.5 * reference["macs"]
        and chosen["test_int8_accuracy"] >= reference["int8_test_accuracy"],
    }


def main() -> None:
    parser = bench_arguments(__doc__.splitlines()[0])
    parser.add_argument(
        "--budget-minutes", type=float, default=0.0, help="per board profile (default 60; 4 quick)"
    )
    parser.add_argument("--work-dir", default="runs/bench_search", help="search folders")
    parser.add_argument("--output", default="")
    parser.add_argument(
        "--profiles",
        nargs="+",
        default=[],
        help="board profiles by name (default: nano33ble and pico-tight; also "
        + ", ".join(EXTRA_PROFILES)
        + ")",
    )
    parser.add_argument(
        "--tflm",
        default="",
        metavar="DIR",
        help="a TFLM tree: count the instructions per inference of each chosen student and "
        "each reference in QEMU (Cortex-M4, mps2-an386)",
    )
    parser.add_argument("--qemu-samples", type=int, default=20, help="test samples run in QEMU")
    parser.add_argument(
        "--references-from",
        default="",
        metavar="JSON",
        help="reuse the references of an earlier run of this bench (same data and epochs; "
        "single-threaded training reproduces them exactly) instead of training them again",
    )
    parser.set_defaults(epochs=0)  # 0: the demo's student epochs
    args = parser.parse_args()
    quick = args.quick
    if quick:
        args.set = [*QUICK_SETTINGS, *args.set]  # the user's last: they win
    config = bench_config(args)
    budget = args.budget_minutes or (4.0 if quick else 60.0)
    profiles = QUICK_PROFILES if quick else PROFILES
    if args.profiles:
        known = {p["name"]: p for p in [*profiles, *EXTRA_PROFILES.values()]}
        unknown = [name for name in args.profiles if name not in known]
        if unknown:
            parser.error(f"unknown profile(s) {unknown}; choose from {sorted(known)}")
        profiles = [known[name] for name in args.profiles]
    artifacts = {}
    progress = Progress()
    cores = len(os.sched_getaffinity(0))
    searches, data = [], None
    for profile in profiles:
        progress.step(f"Search for profile {profile['name']}")
        folder = Path(args.work_dir) / ("quick" if quick else "full") / profile["name"]
        run_config = replace(config, output=replace(config.output, dir=str(folder)))
        started = time.monotonic()
        state, data, row = run_search(run_config, limits_of(profile, args.tflm), budget, progress)
        cost = state.costs[state.chosen["candidate"]]
        artifacts[f"{profile['name']}: {state.chosen['candidate']}"] = row.artifact
        searches.append(
            {
                "profile": profile,
                "limits": state.limits.describe(),
                "search_minutes": round((time.monotonic() - started) / 60, 2),
                "teacher_seconds": round(state.teacher_seconds, 1),
                "budget_minutes": budget,
                "budget_reached": state.budget_reached,
                "candidates": len(state.candidates),
                "dropped": {name: reasons for name, reasons in state.dropped.items()},
                "rung_epochs": state.rung_epochs,
                "trials": len(state.trials),
                "front": [
                    {
                        **p,
                        "macs": state.costs[p["candidate"]].macs,
                        "latency_label": state.costs[p["candidate"]].latency_label,
                    }
                    for p in state.front
                ],
                "chosen": {
                    **state.chosen,
                    "test_int8_accuracy": row.int8_accuracy,
                    "macs": cost.macs,
                    "latency_label": cost.latency_label,  # "QEMU count" or "estimated"
                    "latency_estimated_ms": cost.latency_estimated_ms,
                    "tflite_bytes": cost.tflite_bytes,
                    "predicted_equals_measured": cost.tflite_bytes == row.artifact.size_bytes
                    and cost.arena_bytes == row.artifact.arena.size_bytes,
                },
                "run_dir": str(folder),
            }
        )
    earlier = None
    if args.references_from:
        path = Path(args.references_from)
        earlier = json.loads(path.read_text(encoding="utf-8"))
        references = earlier_references(earlier, path, data, config)
    else:
        progress.step("References trained the plain way, full epochs")
        references = [
            train_reference(name, config, data, progress, artifacts) for name in REFERENCES
        ]
    for search in searches:
        board = load_board(search["profile"]["board"])
        search["against_references"] = [compare(search["chosen"], ref) for ref in references]
        search["reference_latency_ms_estimated"] = {
            ref["model"]: board.estimate_seconds(ref["work"]) * 1000
            for ref in references
            if "work" in ref  # not kept in the JSON: absent for --references-from
        }
    summary = {
        "command": command_line(),
        "cores": cores,
        "data": {
            "name": data.name,
            "train": len(data.x_train),
            "validation": len(data.x_val),
            "test": len(data.x_test),
        },
        "student_epochs": config.student.epochs,
        "searches": searches,
        "references": [{k: v for k, v in ref.items() if k != "work"} for ref in references],
    }
    name = "search_boards_quick" if quick else "search_boards"
    output = Path(args.output) if args.output else RESULTS / f"{name}.json"
    write_json_atomic(output, summary)
    if args.tflm:  # after the figures are safe on disk: QEMU is slow and needs a TFLM tree
        progress.step(f"Instructions per inference in QEMU ({QEMU_COUNTING_BOARD})")
        summary["qemu"] = count_instructions(args.tflm, artifacts, data, args, progress)
        if earlier is not None:  # the references' counts come with their figures
            summary["qemu"].update(
                {k: v for k, v in earlier.get("qemu", {}).items() if k.endswith("(plain)")}
            )
        for search in summary["searches"]:
            key = f"{search['profile']['name']}: {search['chosen']['candidate']}"
            instructions = summary["qemu"][key]["instructions_median"]
            board = load_board(search["profile"]["board"])
            search["chosen"]["latency_ms_at_one_instruction_per_cycle"] = (
                one_instruction_per_cycle_ms(instructions, board)
            )
        write_json_atomic(output, summary)
    print()
    print(report(summary))
    print(f"\nWrote {output}")


def count_instructions(tflm_dir: str, artifacts: dict, data, args, progress) -> dict:
    """Each model's firmware in QEMU on the first test samples: instructions per inference
    (QEMU counts instructions, not cycles), and whether its outputs equal the interpreter's."""
    from tinykd.firmware.tflm_library import find_tflm_tree
    from tinykd.measure.qemu_run import run_in_qemu
    from tinykd.measure.tflm import TflmModel

    tree = find_tflm_tree(tflm_dir)
    board = load_board(QEMU_COUNTING_BOARD)
    x, y = data.x_test[: args.qemu_samples], data.y_test[: args.qemu_samples]
    figures = {}
    for index, (name, artifact) in enumerate(artifacts.items()):
        progress.say(f"{name}: {len(x)} samples in QEMU")
        run = run_in_qemu(
            board,
            artifact,
            TflmModel(artifact).quantize(x),
            tflm=tree,
            out_dir=Path(args.work_dir) / "qemu" / f"model{index}",
            labels=y,
        )
        figures[name] = {
            "kernels": run.kernels,
            "samples": run.samples,
            "identical_outputs": run.identical_outputs,
            "instructions_median": run.ticks_median,
            "tick_unit": run.tick_unit,
            "arena_used_32bit": run.arena_used,
        }
    return figures


def latency_kind(entry: dict) -> str:
    """How a latency figure was obtained (results written before the label: estimated)."""
    return "QEMU count" if entry.get("latency_label") == "QEMU count" else "est."


def limits_text(search: dict) -> str:
    profile = search["profile"]
    return (
        f"{profile['board']}: ≤ {profile['max_latency_ms']:g} ms "
        f"({latency_kind(search['chosen'])}), arena ≤ {profile['max_arena']}, flash ≤ "
        f"{profile['max_flash']}"
    )


def report(summary: dict) -> str:
    lines = [
        f"# tinykd search on {summary['data']['name']} ({summary['data']['train']} train, "
        f"{summary['cores']} core(s)); int8 accuracy on the test split in TFLM",
        "",
        "| profile | limits | search min | trials | chosen | int8 test | arena B | MACs "
        "| latency ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary["searches"]:
        c = s["chosen"]
        lines.append(
            f"| {s['profile']['name']} | {limits_text(s)} | {s['search_minutes']:.1f} | "
            f"{s['trials']} | {c['candidate']} | {c['test_int8_accuracy']:.2%} | "
            f"{c['arena_bytes']:,} | {c['macs']:,} | {c['latency_ms']:.2f} ({latency_kind(c)}) |"
        )
    lines += ["", "| reference (plain) | int8 test | arena B | MACs |", "|---|---|---|---|"]
    for ref in summary["references"]:
        lines.append(
            f"| {ref['model']} | {ref['int8_test_accuracy']:.2%} | {ref['arena_bytes']:,} | "
            f"{ref['macs']:,} |"
        )
    lines += [
        "",
        "| profile | vs | arena ratio | MACs ratio | int8 acc diff | ≤0.5×, ≥acc |",
        "|---|---|---|---|---|---|",
    ]
    for s in summary["searches"]:
        for r in s["against_references"]:
            lines.append(
                f"| {s['profile']['name']} | {r['reference']} | {r['arena_ratio']:.3f} | "
                f"{r['macs_ratio']:.4f} | {100 * r['int8_accuracy_difference']:+.2f} pt | "
                f"{'yes' if r['meets_issue_target'] else 'no'} |"
            )
    if "qemu" in summary:
        lines += [
            "",
            f"| model | QEMU {QEMU_COUNTING_BOARD} instructions / inference | kernels | outputs = "
            "interpreter |",
            "|---|---|---|---|",
        ]
        for name, q in summary["qemu"].items():
            lines.append(
                f"| {name} | {q['instructions_median']:,} | {q['kernels']} | "
                f"{q['identical_outputs']}/{q['samples']} |"
            )
        for s in summary["searches"]:
            c = s["chosen"]
            lines.append(
                f"\n{s['profile']['name']}: latency of {c['candidate']}: "
                f"{c.get('latency_estimated_ms', c['latency_ms']):.2f} ms "
                f"estimated (cycles-per-MAC model) vs "
                f"{c['latency_ms_at_one_instruction_per_cycle']:.2f} ms from QEMU's instruction "
                "count at one instruction per cycle"
            )
    for s in summary["searches"]:
        lines.append(f"\nFront of {s['profile']['name']}:")
        for p in s["front"]:
            lines.append(
                f"  {p['candidate']:16s} int8 val {p['int8_accuracy']:.2%}  arena "
                f"{p['arena_bytes']:,} B  {p['latency_ms']:.2f} ms {latency_kind(p)}  "
                f"flash {p['flash_bytes']:,} B"
            )
    return "\n".join(lines)


def report_table(summary: dict) -> str:
    """The lines the README quotes: the report without its title (tests/test_readme_figures.py)."""
    return "\n".join(report(summary).splitlines()[1:])


if __name__ == "__main__":
    main()
