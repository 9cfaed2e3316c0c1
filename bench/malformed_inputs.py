"""Malformed configs and data sets → clear error, note, traceback or silent acceptance.

Every case runs the real command line (``tinykd run`` or ``tinykd export``) in this process;
the teacher stage is replaced by a stop, so nothing trains: a case that gets there was
accepted. Outcomes:

- error: exit status 2 with one ``error:`` message and no traceback;
- note: accepted with a ``note:`` naming the problem (only where a note is the right answer,
  e.g. a key that has no effect);
- traceback: an exception escaped the command;
- silent: accepted without a word (reached training, or exit 0).

Goal: every case an error or its expected note, 0 tracebacks, 0 silent acceptances. The
counts go to bench/results/malformed_inputs.json; the table is built from them.

    python bench/malformed_inputs.py            # table + one line per case
    python bench/malformed_inputs.py --skip-unsafe   # leave out cases that exhaust memory
                                                     # on code without the checks
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from bench_json import RESULTS, write_results  # noqa: E402

OUTCOMES = ("error", "note", "traceback", "silent")


class ReachedTraining(Exception):
    """The run got to the teacher stage: the input was accepted."""


@dataclass
class Case:
    group: str
    name: str
    arguments: object  # (work folder) -> argv
    expect: str = "error"  # or "note: <text the note must contain>"
    unsafe: bool = False  # exhausts memory or time on code without the checks


def run(*options: str, out: str | None = None):
    """argv of ``tinykd run`` (digits unless the options name a dataset)."""

    def arguments(work: Path) -> list[str]:
        dataset = [] if any("data.dataset" in o for o in options) else ["--dataset", "digits"]
        return ["run", *dataset, "--out", out or str(work / "out"), *options]

    return arguments


def sets(*overrides: str):
    return run(*(part for override in overrides for part in ("--set", override)))


def npz_case(**arrays):
    """``tinykd run`` on an .npz holding ``arrays`` (defaults: 3 classes of 8×8 uint8)."""

    def arguments(work: Path) -> list[str]:
        rng = np.random.default_rng(0)
        content = {
            "x_train": rng.integers(0, 256, (90, 8, 8), dtype=np.uint8),
            "y_train": np.arange(90) % 3,
            "x_test": rng.integers(0, 256, (60, 8, 8), dtype=np.uint8),
            "y_test": np.arange(60) % 3,
        }
        content.update({k: v for k, v in arrays.items() if v is not None})
        for key in [k for k, v in arrays.items() if v is None]:
            content.pop(key)
        path = work / "data.npz"
        np.savez(path, **content)
        return sets("data.dataset='npz'", f"data.path='{path}'")(work)

    return arguments


def folder_case(sizes, *, suffix=".png", extra=(), classes=("cat", "dog"), options=()):
    """``tinykd run`` on an image folder: one image per size per class, plus ``extra``
    (file name, bytes or a Pillow format) in the first class."""

    def arguments(work: Path) -> list[str]:
        from PIL import Image

        root = work / "images"
        for label in classes:
            (root / label).mkdir(parents=True)
            for index, (width, height) in enumerate(sizes):
                image = Image.new("L", (width, height), color=(7 * index) % 256)
                image.save(root / label / f"{index}{suffix}")
        for name, content in extra:
            target = root / classes[0] / name
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                Image.new("L", (8, 8)).save(target, format=content)
        return sets("data.dataset='image_folder'", f"data.path='{root}'", *options)(work)

    return arguments


def file_config(text: bytes | None):
    """``tinykd run --config`` on a file holding ``text`` (None: a directory)."""

    def arguments(work: Path) -> list[str]:
        path = work / "config.toml"
        if text is None:
            path.mkdir()
        else:
            path.write_bytes(text)
        return ["run", "--config", str(path), "--out", str(work / "out")]

    return arguments


def export_case(content: bytes | None):
    def arguments(work: Path) -> list[str]:
        path = work / "model.tflite"
        if content is None:
            path.mkdir()
            (path / "student.tflite").write_bytes(b"\0" * 8)
        else:
            path.write_bytes(content)
        return ["export", str(path), "--out", str(work / "c")]

    return arguments


def blocked_out(work: Path) -> list[str]:
    (work / "a-file").write_text("")
    return run(out=str(work / "a-file" / "run"))(work)


def out_is_a_file(work: Path) -> list[str]:
    (work / "a-file").write_text("")
    return run(out=str(work / "a-file"))(work)


def not_an_npz(work: Path) -> list[str]:
    (work / "d.npz").write_bytes(b"junk")
    return sets("data.dataset='npz'", f"data.path='{work / 'd.npz'}'")(work)


GRAY = (8, 8)
CASES = [
    # ranges
    Case("config: ranges", "student.epochs = 0", sets("student.epochs=0")),
    Case("config: ranges", "teacher.epochs = -3", sets("teacher.epochs=-3")),
    Case("config: ranges", "student.epochs = 10^12", sets("student.epochs=1000000000000")),
    Case("config: ranges", "teacher.batch_size = 0", sets("teacher.batch_size=0")),
    Case("config: ranges", "seed = -1", sets("seed=-1")),
    Case("config: ranges", "--seed 2^40", run("--seed", str(2**40))),
    Case("config: ranges", "student.width = 10^6", sets("student.width=1e6")),
    Case("config: ranges", "teacher.width = 0", sets("teacher.width=0")),
    Case("config: ranges", "student.learning_rate = -0.1", sets("student.learning_rate=-0.1")),
    Case("config: ranges", "teacher.learning_rate = 0", sets("teacher.learning_rate=0")),
    Case("config: ranges", "data.validation_fraction = 1", sets("data.validation_fraction=1.0")),
    Case("config: ranges", "data.validation_fraction = nan", sets("data.validation_fraction=nan")),
    Case(
        "config: ranges",
        "quantization.calibration_samples = 0",
        sets("quantization.calibration_samples=0"),
    ),
    Case("config: ranges", "compression.sparsity = 1.5", sets("compression.sparsity=1.5")),
    Case(
        "config: ranges",
        "data.image_size = [0, 0]",
        sets("data.dataset='image_folder'", "data.image_size=[0, 0]"),
    ),
    Case("config: ranges", "data.image_size = [12]", sets("data.image_size=[12]")),
    # types
    Case(
        "config: types",
        'temperature = "4" (a string)',
        sets("distillation.losses=[{name='kd', temperature='4'}]"),
    ),
    Case(
        "config: types",
        "temperature = -1",
        sets("distillation.losses=[{name='kd', temperature=-1.0}]"),
    ),
    Case(
        "config: types",
        "temperature = nan",
        sets("distillation.losses=[{name='kd', temperature=nan}]"),
    ),
    Case("config: types", 'student.epochs = "ten"', sets("student.epochs='ten'")),
    Case(
        "config: types",
        "strategy param of the wrong type",
        sets("strategy.name='born_again'", "strategy.params={generations='3'}"),
    ),
    Case("config: types", "--set without =", run("--set", "student.epochs")),
    # names
    Case("config: names", "unknown student model", sets("student.model='plain_cnnn'")),
    Case("config: names", "unknown teacher model", sets("teacher.model='resnet'")),
    Case("config: names", "unknown loss", sets("distillation.losses=[{name='kdd'}]")),
    Case("config: names", "unknown strategy", sets("strategy.name='born_agian'")),
    Case("config: names", "unknown dataset", sets("data.dataset='digit'")),
    Case("config: names", "unknown color mode", sets("data.color_mode='rgba'")),
    Case("config: names", "misspelt key", sets("student.epoch=3")),
    Case(
        "config: names",
        "loss tap naming no layer",
        sets("distillation.losses=[{name='nst', teacher_tap='block2_conv2_relux'}]"),
    ),
    Case(
        "config: names",
        "weight_init naming no layer",
        sets("distillation.weight_init=[{teacher_layer='block1_conv1', student_layer='conv9'}]"),
    ),
    # files and folders
    Case("config: files", "output.dir under a file", blocked_out),
    Case("config: files", "output.dir is a file", out_is_a_file),
    Case("config: files", "--config is a directory", file_config(None)),
    Case("config: files", "--config is a binary file", file_config(bytes(range(256)) * 8)),
    Case("config: files", "--config is not TOML", file_config(b"[student\nepochs = 3\n")),
    Case("config: files", "export DIR", export_case(None)),
    Case("config: files", "export of a non-TFLite file", export_case(b"not a model" * 10)),
    # keys without effect
    Case(
        "config: no effect",
        "image_size for digits",
        sets("data.image_size=[16, 16]"),
        "note: data.image_size",
    ),
    Case("config: no effect", "flip without augment", sets("data.flip=true"), "note: data.flip"),
    Case(
        "config: no effect",
        "teacher.epochs with teacher.path",
        sets("teacher.path='t.keras'", "teacher.epochs=3"),
        "note: teacher.epochs",
    ),
    # labels
    Case(
        "data: labels", "infinite float labels", npz_case(y_train=np.array([0.0, 1.0, np.inf] * 30))
    ),
    Case("data: labels", "NaN float labels", npz_case(y_train=np.array([0.0, 1.0, np.nan] * 30))),
    Case(
        "data: labels",
        "a single class",
        npz_case(y_train=np.zeros(90, int), y_test=np.zeros(60, int)),
    ),
    Case(
        "data: labels",
        "label 3e8",
        npz_case(y_train=np.array([0, 1, 300_000_000] * 30)),
        unsafe=True,
    ),
    Case("data: labels", "a negative label", npz_case(y_train=np.array([0, 1, -1] * 30))),
    Case("data: labels", "one-hot labels", npz_case(y_train=np.eye(3)[np.arange(90) % 3])),
    Case("data: labels", "fewer labels than images", npz_case(y_train=np.arange(80) % 3)),
    Case("data: labels", "no y_train", npz_case(y_train=None)),
    # images
    Case(
        "data: images",
        "1×1 images",
        npz_case(x_train=np.zeros((90, 1, 1), np.uint8), x_test=np.zeros((60, 1, 1), np.uint8)),
    ),
    Case(
        "data: images",
        "600×600 images in an .npz",
        npz_case(
            x_train=np.zeros((90, 600, 600), np.uint8), x_test=np.zeros((60, 600, 600), np.uint8)
        ),
    ),
    Case("data: images", "float images in [0, 255]", npz_case(x_train=np.full((90, 8, 8), 200.0))),
    Case("data: images", "NaN pixels", npz_case(x_train=np.full((90, 8, 8), np.nan))),
    Case("data: images", "not an .npz file", not_an_npz),
    Case("data: images", "data.path missing", sets("data.dataset='npz'")),
    Case(
        "data: images",
        "data.path does not exist",
        sets("data.dataset='npz'", "data.path='/nonexistent.npz'"),
    ),
    Case(
        "data: folder",
        "2000-3000 px images",
        folder_case([(3000, 2000), (2000, 2500)] + [(3000, 2000)] * 30),
    ),
    Case(
        "data: folder",
        ".webp and .tif files",
        folder_case([GRAY] * 40, extra=[("x.webp", "WEBP"), ("y.tif", "TIFF")]),
    ),
    Case("data: folder", "a single class folder", folder_case([GRAY] * 40, classes=("cat",))),
    Case(
        "data: folder",
        "a corrupt .png",
        folder_case([GRAY] * 40, extra=[("bad.png", b"\x89PNG junk")]),
    ),
    Case("data: folder", "mixed sizes, no image_size", folder_case([GRAY, (9, 9)] * 20)),
    Case(
        "data: folder",
        "a non-image file among images",
        folder_case([GRAY] * 60, extra=[("notes.txt", b"hello")]),
        "note: were not loaded",
    ),
    # test set
    Case(
        "data: test set",
        "3 test samples",
        npz_case(x_test=np.zeros((3, 8, 8), np.uint8), y_test=np.arange(3)),
    ),
    Case("data: test set", "data.test_limit = 3", sets("data.test_limit=3")),
    Case(
        "data: test set",
        "50 test samples",
        npz_case(x_test=np.zeros((51, 8, 8), np.uint8), y_test=np.arange(51) % 3),
        "note: Only 51 test samples",
    ),
]


def outcome(case: Case, work: Path) -> tuple[str, str]:
    """(error | note | traceback | silent, the message or exception)."""
    import tinykd.pipeline
    from tinykd import cli

    def stop(*args, **kwargs):
        raise ReachedTraining

    tinykd.pipeline.obtain_teacher = stop
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        argv = case.arguments(work)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            status = cli.main(argv)
    except ReachedTraining:
        status = 0
    except SystemExit as exc:  # argparse
        status = exc.code
    except BaseException as exc:  # noqa: BLE001 - counting what escapes is the point
        return "traceback", f"{type(exc).__name__}: {str(exc)[:120]}"
    error = stderr.getvalue()
    if status == 2 and error.startswith("error:") and "Traceback" not in error:
        return "error", " ".join(error.split())[:150]
    if status not in (0, None):
        return "traceback", f"exit {status}: {stderr.getvalue()[-160:]}"
    if case.expect.startswith("note: "):
        wanted = case.expect.removeprefix("note: ")
        notes = [line for line in stdout.getvalue().splitlines() if "note:" in line]
        matching = [line.strip() for line in notes if wanted in line]
        if matching:
            return "note", matching[0][:160]
    return "silent", "accepted"


def report_table(summary: dict) -> str:
    """The Markdown table the README quotes (built from the JSON, so the two agree)."""
    lines = [
        "| inputs | cases | clear error | note (where a note is the answer) | traceback "
        "| silently accepted |",
        "|---|---|---|---|---|---|",
    ]
    total = Counter()
    for group, counts in summary["groups"].items():
        total.update(counts)
        lines.append(
            f"| {group} | {sum(counts.values())} | {counts['error']} | {counts['note']} | "
            f"{counts['traceback']} | {counts['silent']} |"
        )
    lines.append(
        f"| **all** | {sum(total.values())} | {total['error']} | {total['note']} | "
        f"{total['traceback']} | {total['silent']} |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-unsafe", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="only the table")
    parser.add_argument("--output", default=str(RESULTS / "malformed_inputs.json"))
    args = parser.parse_args(argv)
    os.environ["TINYKD_CACHE_DIR"] = tempfile.mkdtemp(prefix="tinykd-bench-cache-")
    groups: dict[str, dict[str, int]] = {}
    for case in CASES:
        if case.unsafe and args.skip_unsafe:
            continue
        with tempfile.TemporaryDirectory() as work:
            result, message = outcome(case, Path(work))
        expected = "note" if case.expect.startswith("note") else "error"
        counts = groups.setdefault(case.group, dict.fromkeys(OUTCOMES, 0))
        counts[result] += 1
        if not args.quiet:
            mark = "ok " if result == expected else "BAD"
            print(f"{mark} {case.group:18s} {case.name:38s} {result:9s} {message}", flush=True)
    summary = write_results(args.output, {"groups": groups})
    print()
    print(report_table(summary))
    total = Counter()
    for counts in groups.values():
        total.update(counts)
    return 0 if total["traceback"] == 0 and total["silent"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
