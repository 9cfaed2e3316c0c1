"""``tinykd run``, ``demo``, ``export`` and ``list``: the pipeline up to the int8 model."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from tinykd.errors import TinyKDError

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


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def config_overrides(
    sets: list[str],
    *,
    dataset: str | None = None,
    data: str | None = None,
    out: str | None = None,
    seed: int | None = None,
) -> list[str]:
    """``--set`` values plus the shortcuts (``--dataset``, ``--data``, ``--out``, ``--seed``)."""
    overrides = list(sets)
    if data:
        from tinykd.data.sources import own_data_format

        overrides.append(f"data.path={_toml_string(str(Path(data).resolve()))}")
        if not dataset:
            overrides.append(f"data.dataset={_toml_string(own_data_format(data))}")
    if dataset:
        overrides.append(f"data.dataset={dataset!r}".replace("'", '"'))
    if out:
        overrides.append(f'output.dir="{out}"')
    if seed is not None:
        overrides.append(f"seed={seed}")
    return overrides


def demo_config_path() -> Path:
    return Path(str(resources.files("tinykd") / "configs" / "demo.toml"))


def _fashion_mnist_available() -> bool:
    from tinykd.data.sources import FASHION_MNIST_FILES, _fashion_mnist_dirs

    return any(
        all((d / f).exists() for f in FASHION_MNIST_FILES.values()) for d in _fashion_mnist_dirs()
    )


def run(
    config_path: str | None,
    overrides: list[str],
    *,
    demo: bool = False,
    quick: bool = False,
    dataset: str | None = None,
) -> int:
    """Teacher, students, int8 export and the run directory; ``demo`` picks the demo config
    (and digits when Fashion-MNIST is not installed). ``overrides`` win over the rest."""
    from tinykd.config import load_config
    from tinykd.pipeline import arena_note, results_table, run_distillation, write_run
    from tinykd.progress import Progress

    chosen = QUICK_OVERRIDES if quick else []
    notes = []
    if demo and not dataset and not _fashion_mnist_available():
        chosen = [*chosen, 'data.dataset="digits"']
        notes.append(
            "Fashion-MNIST is not installed (sudo apt-get install dataset-fashion-mnist); "
            "this demo ran on scikit-learn's digits instead."
        )
        print(f"note: {notes[-1]}", flush=True)
    if demo and (dataset == "digits" or 'data.dataset="digits"' in chosen):
        chosen = [*chosen, *DIGITS_DEMO_OVERRIDES]
    chosen = [*chosen, *overrides]  # the user's last: they win
    config = load_config(config_path or (demo_config_path() if demo else None), chosen)
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


def export(tflite: str, out: str, *, labels: str | None = None, arena_margin: int = 0) -> int:
    """A .tflite → the model folder (C sources, model.tflite, artifact.json)."""
    from tinykd.export import Int8Artifact, write_model_folder

    path = Path(tflite)
    if not path.exists():
        raise TinyKDError(f"{path} does not exist.")
    if not path.is_file():
        found = sorted(path.glob("*.tflite"))
        hint = f" (it holds {', '.join(p.name for p in found[:4])})" if found else ""
        raise TinyKDError(f"{path} is a directory; give the path of a .tflite file{hint}.")
    names, origin = run_labels(path), "report.json of its run"
    if labels:
        names, origin = labels.split(","), "--labels"
    artifact = Int8Artifact(
        path.read_bytes(), name=path.stem, labels=names, extra_margin=arena_margin
    )
    if names is None:
        origin = "output indices (no --labels)"
    named = ", ".join(f"{index}={name}" for index, name in enumerate(artifact.labels))
    print(f"labels ({origin}): {named}")
    folder = write_model_folder(artifact, out)
    print(
        f"Wrote the model folder {folder} (C sources, model.tflite, artifact.json): "
        f"{artifact.arena.describe()}; operators {', '.join(artifact.operators)}"
    )
    return 0


def run_labels(tflite_path: Path) -> list[str] | None:
    """The class labels a run wrote beside its .tflite (report.json), if any."""
    report = tflite_path.parent / "report.json"
    try:
        labels = json.loads(report.read_text())["dataset"]["labels"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return [str(label) for label in labels] if isinstance(labels, list) and labels else None


def list_registered(what: str) -> int:
    """``tinykd list models|strategies|losses``."""
    if what == "models":
        from tinykd.models import MODELS

        print("\n".join(MODELS.names()))
    elif what == "strategies":
        from tinykd.strategies import STRATEGIES

        print("\n".join(STRATEGIES.names()))
    else:
        from tinykd.distill import LOSSES

        for name in LOSSES.names():
            summary = (LOSSES.get(name).__doc__ or "").strip().splitlines()[0]
            print(f"{name:20s} {summary}")
    return 0
