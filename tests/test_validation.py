"""Bad config and data fail before any training with one readable error; run directories
are written as one unit. One test per defect of issue 18 (items 3 and 5)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tinykd import cli
from tinykd.config import config_from_dict, inapplicable_keys, load_config, to_toml
from tinykd.errors import TinyKDError


class ReachedTraining(Exception):
    """Raised where the teacher would start training: the input was accepted."""


@pytest.fixture
def no_training(monkeypatch, tmp_path):
    """``run(*args)`` → (exit status, stderr) of ``tinykd run``, stopping where training starts."""
    import tinykd.pipeline

    def refuse(*args, **kwargs):
        raise ReachedTraining

    monkeypatch.setattr(tinykd.pipeline, "obtain_teacher", refuse)

    def run(*args):
        return cli.main(["run", "--out", str(tmp_path / "out"), *args])

    return run


def _config_problems(*overrides: str) -> str:
    with pytest.raises(TinyKDError) as error:
        load_config(None, list(overrides))
    return str(error.value)


# ---- config ranges, names and types ------------------------------------------------------


@pytest.mark.parametrize(
    "override, expected",
    [
        ("student.epochs=0", "student.epochs: expected in [1, 10000], got 0"),
        ("teacher.epochs=1000000000000", "teacher.epochs: expected in [1, 10000]"),
        ("student.batch_size=0", "student.batch_size: expected in [1, 65536], got 0"),
        ("seed=-1", "seed: expected in [0, 4294967295], got -1"),
        ("seed=4294967296", "seed: expected in [0, 4294967295], got 4294967296"),
        ("student.width=1000.0", "student.width: expected in (0, 16], got 1000.0"),
        ("teacher.learning_rate=-0.001", "teacher.learning_rate: expected in (0, 1], got -0.001"),
        ("student.learning_rate=0", "student.learning_rate: expected in (0, 1], got 0"),
        ("data.validation_fraction=nan", "data.validation_fraction: expected a finite number"),
        ("quantization.calibration_samples=0", "quantization.calibration_samples: expected in"),
        ("data.image_size=[0, 0]", "data.image_size: expected every item in [4, 512], got 0"),
        ("data.image_size=[12]", "data.image_size: expected [height, width] (two numbers)"),
        (
            "distillation.losses=[{name='kd', temperature='hot'}]",
            "distillation.losses[0].temperature: expected a number, got 'hot'",
        ),
        (
            "distillation.losses=[{name='kd', temperature=inf}]",
            "distillation.losses[0].temperature: expected a finite number",
        ),
        ("student.model='plain_cnnn'", "student.model: unknown name 'plain_cnnn' (did you mean"),
        ("teacher.model='resnet'", "teacher.model: unknown name 'resnet'"),
        ("data.dataset='digit'", "data.dataset: unknown name 'digit' (did you mean 'digits'?)"),
        ("data.color_mode='rgba'", "data.color_mode: unknown name 'rgba'"),
    ],
)
def test_out_of_range_values_and_unknown_names_are_refused_at_load(override, expected):
    assert expected in _config_problems(override)


def test_all_config_problems_are_reported_at_once():
    message = _config_problems("student.epochs=0", "seed=-1", "student.model='x'")
    assert message.count("\n  ") == 3


def test_a_string_temperature_gets_a_type_message_not_a_comparison_error():
    message = _config_problems("distillation.losses=[{name='kd', temperature='4'}]")
    assert "not supported" not in message and "expected a number, got '4'" in message


def test_keys_that_have_no_effect_get_a_note():
    config = load_config(
        None,
        [
            "data.dataset='digits'",
            "data.image_size=[16, 16]",
            "data.flip=true",
            "teacher.path='teacher.keras'",
            "teacher.epochs=3",
        ],
    )
    assert inapplicable_keys(config) == [
        "data.image_size = [16, 16] has no effect: it applies only with data.dataset = "
        "'image_folder'.",
        "data.flip = true has no effect: it applies only with data.augment = true.",
        "teacher.epochs = 3 has no effect: it applies only with no teacher.path (a teacher "
        "trained here).",
    ]
    assert inapplicable_keys(load_config(None, ["data.augment=true", "data.flip=true"])) == []


def test_a_directory_or_a_binary_file_as_config_is_a_clear_error(tmp_path, capsys):
    binary = tmp_path / "model.tflite"
    binary.write_bytes(bytes(range(256)) * 4)
    assert cli.main(["run", "--config", str(tmp_path)]) == 2
    assert "is a directory; give the path of a .toml file" in capsys.readouterr().err
    assert cli.main(["run", "--config", str(binary)]) == 2
    assert "is not a text file" in capsys.readouterr().err


def test_export_of_a_directory_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "student.tflite").write_bytes(b"x")
    assert cli.main(["export", str(tmp_path), "--out", str(tmp_path / "c")]) == 2
    assert "is a directory; give the path of a .tflite file (it holds student.tflite)" in (
        capsys.readouterr().err
    )


def test_an_unwritable_output_dir_fails_before_training(tmp_path, no_training, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    status = cli.main(["run", "--dataset", "digits", "--out", str(blocker / "run")])
    assert status == 2  # ReachedTraining would have propagated
    assert f"output.dir {blocker / 'run'} cannot be written" in capsys.readouterr().err


def test_a_misspelt_layer_in_a_loss_tap_fails_before_the_teacher_trains(no_training, capsys):
    tap = "distillation.losses=[{name='nst', teacher_tap='block2_conv2_relux', student_tap='conv2_relu'}]"
    assert no_training("--dataset", "digits", "--set", tap) == 2
    assert "has no layer 'block2_conv2_relux' to tap" in _error_of(capsys)


# ---- data ----------------------------------------------------------------------------------


def _npz(path: Path, rng, *, n=60, side=8, classes=3, **overrides) -> Path:
    arrays = {
        "x_train": rng.integers(0, 256, (n, side, side), dtype=np.uint8),
        "y_train": np.arange(n) % classes,
        "x_test": rng.integers(0, 256, (n, side, side), dtype=np.uint8),
        "y_test": np.arange(n) % classes,
    }
    arrays.update(overrides)
    np.savez(path, **arrays)
    return path


def _run_npz(no_training, path: Path, *more: str) -> int:
    return no_training("--set", "data.dataset='npz'", "--set", f"data.path='{path}'", *more)


def _error_of(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    return line


@pytest.mark.parametrize(
    "labels, expected",
    [
        (np.array([0.0, 1.0, np.inf] * 20), "holds 20 NaN or infinite label(s)"),
        (np.array([0.0, 1.0, np.nan] * 20), "holds 20 NaN or infinite label(s)"),
        (np.array([0, 1, 300_000_000] * 20), "has label 3e+08; class ids must be 0..K-1"),
        (np.zeros(60, dtype=np.int64), "has a single class"),
    ],
)
def test_bad_labels_are_one_line_errors(tmp_path, rng, no_training, capsys, labels, expected):
    path = _npz(tmp_path / "d.npz", rng, y_train=labels, y_test=labels)
    assert _run_npz(no_training, path) == 2
    assert expected in _error_of(capsys)


def test_one_pixel_images_are_refused(tmp_path, rng, no_training, capsys):
    path = _npz(tmp_path / "d.npz", rng, side=1)
    assert _run_npz(no_training, path) == 2
    assert "images are 1×1; tinykd's models need at least 4×4 pixels" in _error_of(capsys)


def test_a_three_sample_test_set_is_refused_and_a_small_one_gets_a_note(
    tmp_path, rng, no_training, capsys
):
    path = _npz(tmp_path / "d.npz", rng)
    assert _run_npz(no_training, path, "--set", "data.test_limit=3") == 2
    assert "Only 3 test sample(s)" in _error_of(capsys)
    path = _npz(
        tmp_path / "d50.npz",
        rng,
        x_test=rng.integers(0, 256, (50, 8, 8), dtype=np.uint8),
        y_test=np.arange(50) % 3,
    )
    with pytest.raises(ReachedTraining):
        _run_npz(no_training, path)
    # 95 % interval half-width at p = 0.5: 1.96 * sqrt(0.25 / 50) = 0.1386 → ±14 points
    out = capsys.readouterr().out
    assert "note: Only 50 test samples: each accuracy is uncertain by up to ±14 points" in out


def _image_folder(root: Path, sizes, suffix=".png", extra: dict | None = None) -> Path:
    from PIL import Image

    for label in ("cat", "dog"):
        folder = root / label
        folder.mkdir(parents=True)
        for index, (width, height) in enumerate(sizes):
            Image.new("L", (width, height), color=40 * index).save(folder / f"{index}{suffix}")
    for name, data in (extra or {}).items():
        (root / "cat" / name).write_bytes(data)
    return root


def _run_folder(no_training, root: Path, *more: str) -> int:
    return no_training(
        "--set", "data.dataset='image_folder'", "--set", f"data.path='{root}'", *more
    )


def test_huge_images_are_refused_without_image_size_and_downscaled_with_it(
    tmp_path, no_training, capsys
):
    root = _image_folder(tmp_path / "images", [(2400, 2000)] * 2 + [(30, 25)] * 60)
    assert _run_folder(no_training, root) == 2
    error = _error_of(capsys)
    assert "4 image(s)" in error and "(2400×2000)" in error and "data.image_size" in error
    with pytest.raises(ReachedTraining):
        _run_folder(no_training, root, "--set", "data.image_size=[24, 20]")
    assert "input (24, 20, 1), 2 classes" in capsys.readouterr().out


def test_image_files_in_formats_the_loader_skips_are_named(tmp_path, no_training, capsys):
    from PIL import Image

    from tinykd.data.sources import IMAGE_SUFFIXES

    root = _image_folder(tmp_path / "images", [(8, 8)] * 20)

    Image.new("L", (8, 8)).save(root / "dog" / "extra.webp")
    Image.new("L", (8, 8)).save(root / "dog" / "extra.tif")
    status = None
    try:
        status = _run_folder(no_training, root)
    except ReachedTraining:
        pass
    if {".webp", ".tif"} <= IMAGE_SUFFIXES:  # a loader that reads them: nothing skipped
        assert status is None
    else:
        assert status == 2
        assert "in a format the image_folder loader does not read" in _error_of(capsys)


def test_files_the_image_loader_passes_over_get_a_note(tmp_path):
    from PIL import Image

    from tinykd.data.validate import check_image_folder

    root = _image_folder(tmp_path / "images", [(8, 8)] * 3, extra={"notes.txt": b"hi"})
    (root / "dog" / "more").mkdir()
    Image.new("L", (8, 8)).save(root / "stray.png")
    (note,) = check_image_folder(root, None, 1)
    assert note.startswith(f"3 file(s) or folder(s) in {root} were not loaded")
    for name in (root / "stray.png", root / "cat" / "notes.txt", f"{root / 'dog' / 'more'}/"):
        assert str(name) in note


# ---- class names in C and TOML -------------------------------------------------------------

AWKWARD_NAMES = ["new\nline", 'say "hi"', "back\\slash", "trigraph??=", "café", "tab\there"]


def test_awkward_class_names_round_trip_through_the_run_config():
    config = load_config(None, ["data.dataset='npz'"])
    config.data.class_names = list(AWKWARD_NAMES)
    assert config_from_dict(tomllib.loads(to_toml(config))).data.class_names == AWKWARD_NAMES


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc)")
def test_awkward_class_names_compile_to_the_same_bytes_in_c(tmp_path):
    from tinykd.export.artifact import ArenaPlan
    from tinykd.export.c_sources import model_settings_header
    from tinykd.export.tflite_model import TensorInfo, TfliteInfo

    info = TfliteInfo(
        operators=("FULLY_CONNECTED",),
        input=TensorInfo("in", (1, 8, 8, 1), "int8", 0.5, -128),
        output=TensorInfo("out", (1, len(AWKWARD_NAMES)), "int8", 0.25, 0),
        float_tensors=(),
        size_bytes=100,
    )
    # model_settings_header reads only these fields of an Int8Artifact
    artifact = SimpleNamespace(
        info=info, arena=ArenaPlan(1024, 512), labels=AWKWARD_NAMES, name="m\n1", hash="00"
    )
    header = model_settings_header(artifact)
    (tmp_path / "model_settings.h").write_text(header)
    (tmp_path / "main.c").write_text(
        textwrap.dedent(
            """
            #include <stdio.h>
            #include "model_settings.h"
            int main(void) {
              for (int i = 0; i < TKD_NUM_CLASSES; ++i) fputs(kTkdClassLabels[i], stdout), putchar(0);
              return 0;
            }
            """
        )
    )
    subprocess.run(
        ["cc", "-std=c99", "-Werror", "-o", str(tmp_path / "labels"), str(tmp_path / "main.c")],
        check=True,
        capture_output=True,
    )
    output = subprocess.run([str(tmp_path / "labels")], check=True, capture_output=True).stdout
    assert output == b"".join(name.encode() + b"\0" for name in AWKWARD_NAMES)


# ---- atomic run directories ----------------------------------------------------------------


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize("atomic_swap", [True, False], ids=["renameat2", "two renames"])
def test_a_run_directory_replaces_the_previous_one_whole(tmp_path, monkeypatch, atomic_swap):
    import tinykd.io
    from tinykd.io import atomic_directory

    if not atomic_swap:
        monkeypatch.setattr(tinykd.io, "_exchange", lambda new, path: False)
    target = tmp_path / "run"
    target.mkdir()
    (target / "stale.tflite").write_bytes(b"old")
    with atomic_directory(target) as staging:
        (staging / "report.json").write_text("{}")
    assert _tree(target) == {"report.json": b"{}"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_an_interrupted_write_run_leaves_the_previous_run_untouched(tmp_path, monkeypatch):
    import tinykd.pipeline
    from tinykd.config import RunConfig

    target = tmp_path / "run"
    target.mkdir()
    (target / "report.json").write_text('{"old": true}')
    (target / "scratch_c").mkdir()
    (target / "scratch_c" / "model_data.cc").write_text("old")
    before = _tree(target)
    written = []

    def interrupt_after_first(path, text):
        written.append(path)
        if len(written) > 1:
            raise KeyboardInterrupt
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(str(text))

    monkeypatch.setattr(tinykd.pipeline, "write_json_atomic", interrupt_after_first)
    monkeypatch.setattr(tinykd.pipeline, "write_text_atomic", interrupt_after_first)

    class Data:
        name, source, class_names = "d", "s", ["a", "b"]
        x_train = x_val = x_test = y_test = np.zeros(3)

    with pytest.raises(KeyboardInterrupt):
        tinykd.pipeline.write_run(target, RunConfig(), Data(), [], ["n"])
    assert _tree(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_kill_during_the_write_leaves_the_previous_run_untouched(tmp_path):
    target = tmp_path / "run"
    target.mkdir()
    (target / "scratch.tflite").write_bytes(b"old model")
    (target / "config.toml").write_text("seed = 0\n")
    before = _tree(target)
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from tinykd.io import atomic_directory
        with atomic_directory({str(target)!r}) as staging:
            (staging / "scratch.tflite").write_bytes(b"new model")
            print("half", flush=True)
            time.sleep(60)
            (staging / "config.toml").write_text("seed = 1\\n")
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env)
    assert child.stdout.readline().strip() == b"half"
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert _tree(target) == before


def test_ctrl_c_during_a_run_says_what_is_true(monkeypatch, capsys):
    import tinykd.pipeline

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tinykd.pipeline, "run_distillation", interrupt)
    assert cli.main(["run", "--dataset", "digits"]) == 130
    assert "the previous one (if any) is unchanged" in capsys.readouterr().err
