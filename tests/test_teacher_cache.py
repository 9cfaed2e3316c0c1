"""The teacher cache: what its key covers, corrupt entries, and resuming an interrupted run."""

from __future__ import annotations

import dataclasses
import io
import math

import numpy as np
import pytest

from tinykd.config import RunConfig, TeacherConfig, config_from_dict

TRAIN_LIMIT, BATCH, EPOCHS = 240, 64, 3


def small_config(**teacher) -> RunConfig:
    return config_from_dict(
        {
            "data": {"dataset": "digits", "train_limit": TRAIN_LIMIT, "test_limit": 50},
            "teacher": {"width": 0.25, "epochs": EPOCHS, "batch_size": BATCH, **teacher},
        }
    )


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYKD_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "teachers"


@pytest.fixture(scope="module")
def data():
    from tinykd.pipeline import prepare_data
    from tinykd.progress import Progress

    return prepare_data(small_config(), Progress(quiet=True))


def changed(value):
    """A different value of the same type (for every kind of TeacherConfig field)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value * 2 + 1
    if isinstance(value, str):
        return value + "_other"
    if isinstance(value, list):
        return [*value, value[0] if value else 1]
    if isinstance(value, dict):
        return {**value, "other": 1}
    raise AssertionError(f"no way to change {value!r}")


def test_key_ignores_the_student_seed_and_covers_every_teacher_field(data):
    from tinykd.pipeline import teacher_cache_key
    from tinykd.teachers.cache import NOT_IN_KEY

    config = small_config()
    key = teacher_cache_key(config, data)
    assert teacher_cache_key(dataclasses.replace(config, seed=7), data) == key
    for field in dataclasses.fields(TeacherConfig):
        value = changed(getattr(config.teacher, field.name))
        other = dataclasses.replace(config, teacher=dataclasses.replace(config.teacher))
        setattr(other.teacher, field.name, value)
        if field.name in NOT_IN_KEY:
            assert teacher_cache_key(other, data) == key, field.name
        else:
            assert teacher_cache_key(other, data) != key, field.name
    augmented = dataclasses.replace(config, data=dataclasses.replace(config.data, augment=True))
    assert teacher_cache_key(augmented, data) != key
    pixel = dataclasses.replace(data, x_train=data.x_train.copy())
    pixel.x_train[0, 0, 0, 0] += 0.5
    assert teacher_cache_key(config, pixel) != key


def test_students_of_every_seed_see_the_same_data():
    from tinykd.pipeline import prepare_data
    from tinykd.progress import Progress

    first = prepare_data(small_config(), Progress(quiet=True))
    other_seed = prepare_data(dataclasses.replace(small_config(), seed=5), Progress(quiet=True))
    assert np.array_equal(first.x_train, other_seed.x_train)
    assert np.array_equal(first.y_val, other_seed.y_val)


def run_obtain(config, data):
    from tinykd.pipeline import obtain_teacher
    from tinykd.progress import Progress

    stream = io.StringIO()
    teacher = obtain_teacher(config, data, Progress(stream=stream))
    return teacher, stream.getvalue()


def test_a_corrupt_cache_entry_is_reported_and_rebuilt(cache, data):
    config = small_config(epochs=1)
    first, _ = run_obtain(config, data)
    (model_file,) = cache.glob("*-*[0-9a-f].keras")
    again, printed = run_obtain(config, data)
    assert "reusing the teacher" in printed and again.seconds == 0.0
    x = data.x_test[:8]
    np.testing.assert_array_equal(
        again.model.predict(x, verbose=0), first.model.predict(x, verbose=0)
    )
    model_file.write_bytes(model_file.read_bytes()[:1000])  # a truncated write
    rebuilt, printed = run_obtain(config, data)
    assert "corrupt or incomplete" in printed and rebuilt.seconds > 0
    _, printed = run_obtain(config, data)
    assert "reusing the teacher" in printed


def test_stale_temporary_files_are_removed(cache, data):
    from tinykd.pipeline import teacher_cache_key

    config = small_config(epochs=1)
    stem = f"{config.teacher.model}-{teacher_cache_key(config, data)}"
    cache.mkdir(parents=True, exist_ok=True)
    (cache / f".{stem}.tmp.keras").write_bytes(b"half a model")  # a save killed half-way
    run_obtain(config, data)
    assert not list(cache.glob(".*tmp*"))
    assert sorted(p.name for p in cache.iterdir()) == [f"{stem}.json", f"{stem}.keras"]


class Interrupt(Exception):
    pass


def test_an_interrupted_teacher_resumes_after_its_last_epoch(cache, data, monkeypatch):
    from tinykd.pipeline import teacher_cache_key
    from tinykd.progress import Progress
    from tinykd.teachers.cache import TeacherCacheEntry

    config = small_config()
    original = Progress.epoch_callback

    def interrupting(self, label):
        """The usual epoch lines, but the run is stopped when epoch 2 begins."""
        callback = original(self, label)
        begin = callback.on_epoch_begin

        def stop_before_the_second_epoch(epoch, logs=None):
            if epoch == 1:
                raise Interrupt()
            begin(epoch, logs)

        callback.on_epoch_begin = stop_before_the_second_epoch
        return callback

    monkeypatch.setattr(Progress, "epoch_callback", interrupting)
    with pytest.raises(Interrupt):
        run_obtain(config, data)
    monkeypatch.setattr(Progress, "epoch_callback", original)
    entry = TeacherCacheEntry(f"{config.teacher.model}-{teacher_cache_key(config, data)}", cache)
    checkpoint = entry.load_checkpoint()
    assert checkpoint.epochs_done == 1
    steps_per_epoch = math.ceil(len(data.x_train) / BATCH)
    assert int(checkpoint.optimizer_state[0]) == steps_per_epoch  # Adam's iteration count

    teacher, printed = run_obtain(config, data)
    assert f"resuming the interrupted teacher training after epoch 1/{EPOCHS}" in printed
    assert "teacher epoch 1/" not in printed
    assert f"teacher epoch 2/{EPOCHS}" in printed and f"teacher epoch 3/{EPOCHS}" in printed
    assert not list(cache.glob("*checkpoint*")) and not list(cache.glob(".*tmp*"))
    _, printed = run_obtain(config, data)
    assert "reusing the teacher" in printed
