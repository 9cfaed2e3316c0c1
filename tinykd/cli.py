"""The ``tinykd`` command line: one subcommand per pipeline stage, plus ``demo``.

Every command reports a user-fixable problem as one ``error:`` line (exit status 2), never
a traceback; ``TINYKD_DEBUG=1`` shows the traceback too.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from importlib import resources
from pathlib import Path

from tinykd import __version__
from tinykd.errors import TinyKDError

# Commands contributed by other stages: modules with ``add_parsers(subparsers)``.
COMMAND_MODULES: list[str] = ["tinykd.firmware.cli_commands", "tinykd.measure.harness.cli"]

QUICK_OVERRIDES = [
    "data.train_limit=6000",
    "data.test_limit=2000",
    "teacher.epochs=4",
    "student.epochs=6",
    # Function matching (the demo's distillation) needs a patient schedule; six epochs of a
    # smoke run keep the hard labels too, or the distilled student trails far behind.
    "distillation.hard_label_weight=1.0",
]
# The demo's views shift up to 2 pixels of a 28×28 image; digits are 8×8.
DIGITS_DEMO_OVERRIDES = ["data.max_shift=1"]


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="run configuration (TOML)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. student.epochs=3",
    )
    parser.add_argument(
        "--dataset", help="fashion_mnist, digits, npz or image_folder (overrides data.dataset)"
    )
    parser.add_argument(
        "--data",
        help="your own data: an .npz file or an image folder (sets data.path; data.dataset "
        "follows unless --dataset is given)",
    )
    parser.add_argument("--out", help="run directory (overrides output.dir)")
    parser.add_argument("--seed", type=int, help="random seed (overrides seed)")


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _overrides(args) -> list[str]:
    overrides = list(args.set)
    if args.data:
        from tinykd.data.sources import own_data_format

        overrides.append(f"data.path={_toml_string(str(Path(args.data).resolve()))}")
        if not args.dataset:
            overrides.append(f"data.dataset={_toml_string(own_data_format(args.data))}")
    if args.dataset:
        overrides.append(f"data.dataset={args.dataset!r}".replace("'", '"'))
    if args.out:
        overrides.append(f'output.dir="{args.out}"')
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    return overrides


def demo_config_path() -> Path:
    return Path(str(resources.files("tinykd") / "configs" / "demo.toml"))


def _fashion_mnist_available() -> bool:
    from tinykd.data.sources import FASHION_MNIST_FILES, _fashion_mnist_dirs

    return any(
        all((d / f).exists() for f in FASHION_MNIST_FILES.values()) for d in _fashion_mnist_dirs()
    )


def command_run(args, *, demo: bool = False) -> int:
    from tinykd.config import load_config
    from tinykd.pipeline import arena_note, results_table, run_distillation, write_run
    from tinykd.progress import Progress

    overrides = QUICK_OVERRIDES if getattr(args, "quick", False) else []
    notes = []
    if demo and not args.dataset and not _fashion_mnist_available():
        overrides = [*overrides, 'data.dataset="digits"']
        notes.append(
            "Fashion-MNIST is not installed (sudo apt-get install dataset-fashion-mnist); "
            "this demo ran on scikit-learn's digits instead."
        )
        print(f"note: {notes[-1]}", flush=True)
    if demo and (args.dataset == "digits" or 'data.dataset="digits"' in overrides):
        overrides = [*overrides, *DIGITS_DEMO_OVERRIDES]
    overrides = [*overrides, *_overrides(args)]  # the user's last: they win
    config_path = args.config or (demo_config_path() if demo else None)
    config = load_config(config_path, overrides)
    progress = Progress()
    teacher_limit = 2000 if demo else None
    data, rows, run_notes = run_distillation(config, progress, teacher_int8_limit=teacher_limit)
    out_dir = write_run(Path(config.output.dir), config, data, rows, notes + run_notes)
    print()
    print(results_table(rows))
    print(arena_note(rows))
    for note in notes + run_notes:
        print(f"note: {note}")
    print(f"\nWrote {out_dir}/ (report.md, report.json, *.tflite, *_c/ C sources)")
    return 0


def command_export(args) -> int:
    from tinykd.export import Int8Artifact, write_model_folder

    path = Path(args.tflite)
    if not path.exists():
        raise TinyKDError(f"{path} does not exist.")
    if not path.is_file():
        found = sorted(path.glob("*.tflite"))
        hint = f" (it holds {', '.join(p.name for p in found[:4])})" if found else ""
        raise TinyKDError(f"{path} is a directory; give the path of a .tflite file{hint}.")
    labels, origin = run_labels(path), "report.json of its run"
    if args.labels:
        labels, origin = args.labels.split(","), "--labels"
    artifact = Int8Artifact(
        path.read_bytes(), name=path.stem, labels=labels, extra_margin=args.arena_margin
    )
    if labels is None:
        origin = "output indices (no --labels)"
    named = ", ".join(f"{index}={name}" for index, name in enumerate(artifact.labels))
    print(f"labels ({origin}): {named}")
    folder = write_model_folder(artifact, args.out)
    print(
        f"Wrote the model folder {folder} (C sources, model.tflite, artifact.json): "
        f"{artifact.arena.describe()}; operators {', '.join(artifact.operators)}"
    )
    return 0


def run_labels(tflite_path: Path) -> list[str] | None:
    """The class labels a run wrote beside its .tflite (report.json), if any."""
    import json

    report = tflite_path.parent / "report.json"
    try:
        labels = json.loads(report.read_text())["dataset"]["labels"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return [str(label) for label in labels] if isinstance(labels, list) and labels else None


def command_list(args) -> int:
    if args.what == "models":
        from tinykd.models import MODELS

        print("\n".join(MODELS.names()))
    elif args.what == "strategies":
        from tinykd.strategies import STRATEGIES

        print("\n".join(STRATEGIES.names()))
    else:
        from tinykd.distill import LOSSES

        for name in LOSSES.names():
            summary = (LOSSES.get(name).__doc__ or "").strip().splitlines()[0]
            print(f"{name:20s} {summary}")
    return 0


# What Ctrl-C leaves behind, per command (said only where it is true).
INTERRUPTED = {
    command: "interrupted: the run directory is put in place only once complete, so the "
    "previous one (if any) is unchanged and nothing half-written was left behind"
    for command in ("run", "demo")
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinykd",
        description="Distill a Keras teacher into a tiny int8 student and measure it on a microcontroller.",
    )
    parser.add_argument("--version", action="version", version=f"tinykd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo", help="teacher → scratch and distilled students → int8 → TFLM, on Fashion-MNIST"
    )
    _add_config_arguments(demo)
    demo.add_argument(
        "--quick", action="store_true", help="small subset and few epochs (about 2 minutes)"
    )
    demo.set_defaults(handler=lambda args: command_run(args, demo=True))

    run = sub.add_parser("run", help="the same pipeline from a run configuration file")
    _add_config_arguments(run)
    run.set_defaults(handler=command_run)

    export = sub.add_parser(
        "export", help=".tflite → C arrays, op resolver and model settings for TFLM"
    )
    export.add_argument("tflite")
    export.add_argument("--out", required=True, help="folder for the generated files")
    export.add_argument(
        "--labels",
        help="comma-separated class labels (default: those in the run's report.json beside "
        "the .tflite)",
    )
    export.add_argument(
        "--arena-margin",
        type=int,
        default=0,
        help="bytes added to the arena policy's margin (10 %% of the measured minimum, at least 512)",
    )
    export.set_defaults(handler=command_export)

    listing = sub.add_parser("list", help="registered models or distillation losses")
    listing.add_argument("what", choices=["models", "losses", "strategies"])
    listing.set_defaults(handler=command_list)

    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except TinyKDError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if os.environ.get("TINYKD_DEBUG"):
            raise
        return 2
    except KeyboardInterrupt:
        print(INTERRUPTED.get(args.command, "interrupted"), file=sys.stderr)
        return 130
    except OSError as exc:  # a full disk, a permission, a path that vanished: no traceback
        if os.environ.get("TINYKD_DEBUG"):
            raise
        where = f": {exc.filename}" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except MemoryError:
        if os.environ.get("TINYKD_DEBUG"):
            raise
        print(
            "error: out of memory; use less data (data.train_limit, a smaller data.image_size) "
            "or a smaller batch size",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
