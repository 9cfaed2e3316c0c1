"""The distillation trainer with every loss: where gradients go, configs, schedules,
checkpoints and resume, the saved student, teacher files, errors, two-replica training."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import numpy as np
import pytest

from tinykd._keras import keras, tf
from tinykd.config import config_from_dict, load_config, to_toml
from tinykd.distill import LOSSES, Distiller, LossSchedule, build_loss, initialize_from_teacher
from tinykd.errors import TinyKDError
from tinykd.recipe import LossEntry, WeightInit

ROOT = Path(__file__).resolve().parent.parent


def tiny_teacher(seed: int = 0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(6, 3, padding="same", name="t_conv1")(inputs)
    x = keras.layers.BatchNormalization(name="t_bn1")(x)
    x = keras.layers.ReLU(name="t_relu1")(x)
    x = keras.layers.MaxPooling2D(name="t_pool")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", name="t_conv2")(x)
    x = keras.layers.ReLU(name="t_relu2")(x)
    x = keras.layers.Flatten(name="t_flat")(x)
    x = keras.layers.Dense(12, activation="relu", name="t_fc")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="t_logits")(x), name="teacher")


def tiny_student(seed: int = 1, batch_norm: bool = True):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(3, 3, padding="same", name="s_conv1")(inputs)
    if batch_norm:
        x = keras.layers.BatchNormalization(name="s_bn1")(x)
    x = keras.layers.ReLU(name="s_relu1")(x)
    x = keras.layers.MaxPooling2D(name="s_pool")(x)
    x = keras.layers.Conv2D(4, 3, padding="same", name="s_conv2")(x)
    x = keras.layers.ReLU(name="s_relu2")(x)
    x = keras.layers.Flatten(name="s_flat")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="s_logits")(x), name="student")


def tiny_data(count: int = 32):
    values = np.sin(np.arange(count * 36) * 0.37).reshape(count, 6, 6, 1).astype(np.float32)
    return values, (np.arange(count) % 3).astype(np.int64)


# One configuration per registered loss (and the variants with projections or resizing).
LOSS_CONFIGS = {
    "kd": {"name": "kd", "temperature": 2.0},
    "logit_mse": {"name": "logit_mse"},
    "dkd": {"name": "dkd"},
    "dist": {"name": "dist"},
    "hint": {
        "name": "hint",
        "teacher_tap": "t_relu2",  # 3×3×8 → resized to the student's 6×6, student projected 3 → 8
        "student_tap": "s_relu1",
        "projection": "auto",
    },
    "attention": {"name": "attention", "teacher_tap": "t_relu1", "student_tap": "s_relu1"},
    "nst": {"name": "nst", "teacher_tap": "t_relu2", "student_tap": "s_relu2"},
    "rkd": {"name": "rkd", "teacher_tap": "t_fc", "student_tap": "s_flat"},
    "sp": {"name": "sp", "teacher_tap": "t_relu2", "student_tap": "s_relu2"},
    "fsp": {
        "name": "fsp",
        "teacher_tap": "t_relu1",
        "teacher_end_tap": "t_conv2",
        "student_tap": "s_relu1",
        "student_end_tap": "s_conv2",
        "projection": "conv1x1",
    },
    "gradient": {"name": "gradient", "objective": "cross_entropy"},
    "gradient_of_activation": {
        "name": "gradient",
        "objective": "target_logit",
        "teacher_tap": "t_relu2",
        "student_tap": "s_relu2",
        "projection": "auto",
    },
    "activation_boundary": {
        "name": "activation_boundary",
        "teacher_tap": "t_bn1",
        "student_tap": "s_bn1",
        "projection": "conv1x1",
    },
    "weights": {
        "name": "weights",
        "teacher_layer": "t_conv2",
        "student_layer": "s_conv2",
        "projection": "learned",
    },
    "pixel_kd": {"name": "pixel_kd", "temperature": 2.0},
    "pairwise_affinity": {
        "name": "pairwise_affinity",
        "teacher_tap": "t_relu2",
        "student_tap": "s_relu2",
    },
    "feature_imitation": {
        "name": "feature_imitation",
        "mask": "all",
        "teacher_tap": "t_relu1",
        "student_tap": "s_relu1",
    },
}


# Losses of the sequence tasks (tinykd/distill/losses/sequence.py) tap attention maps and
# hidden states of transformers; tests/lab/tasks trains them on their own models.
SEQUENCE_TASK_LOSSES = {"attention_map", "output_l1"}
# Dense-task losses that need a detection grid or (N, H, W, K) class maps on both sides
# (tinykd/distill/losses/dense.py); tests/lab/tasks trains them on their own models.
DENSE_TASK_LOSSES = {"detection_kd", "map_adversarial"}


def test_every_registered_loss_has_a_training_case():
    names = {entry["name"] for entry in LOSS_CONFIGS.values()}
    assert names == set(LOSSES.names()) - SEQUENCE_TASK_LOSSES - DENSE_TASK_LOSSES


@pytest.mark.parametrize("case", sorted(LOSS_CONFIGS))
def test_gradients_reach_the_student_and_projections_never_the_teacher(case):
    teacher, student = tiny_teacher(), tiny_student()
    teacher_before = [w.copy() for w in teacher.get_weights()]
    student_before = [w.copy() for w in student.get_weights()]
    loss = build_loss(**LOSS_CONFIGS[case])
    # Only the distillation loss drives the update: no hard-label term.
    distiller = Distiller(student, teacher, [loss], hard_label_weight=0.0)
    projection_before = [v.numpy().copy() for v in loss.trainable_variables]
    distiller.compile(optimizer=keras.optimizers.SGD(0.5))
    x, y = tiny_data()
    history = distiller.fit(
        x, distiller.make_targets(x, y, cache_teacher=False), epochs=1, batch_size=16, verbose=0
    )
    assert np.isfinite(history.history["loss"][-1])
    assert all(np.array_equal(a, b) for a, b in zip(teacher_before, teacher.get_weights()))
    assert any(not np.array_equal(a, b) for a, b in zip(student_before, student.get_weights()))
    for before, variable in zip(projection_before, loss.trainable_variables):
        assert not np.array_equal(before, variable.numpy()), f"{variable.name} did not train"
    projected = (
        "hint",
        "fsp",
        "activation_boundary",
        "gradient_of_activation",
        "weights",
        "feature_imitation",
    )
    assert bool(loss.trainable_variables) == (case in projected)
    # The student's own variables are never counted as the loss's (the weights loss borrows one).
    student_ids = {id(v) for v in student.variables}
    assert not any(id(v) in student_ids for v in loss.variables)


def test_cached_and_per_step_teacher_agree_for_features_and_gradients():
    x, y = tiny_data()
    results = []
    for cache in (True, False):
        teacher, student = tiny_teacher(), tiny_student()
        losses = [build_loss(**LOSS_CONFIGS["hint"]), build_loss(**LOSS_CONFIGS["gradient"])]
        distiller = Distiller(student, teacher, losses)
        distiller.compile(optimizer=keras.optimizers.SGD(0.1))
        targets = distiller.make_targets(x, y, cache_teacher=cache)
        assert isinstance(targets, dict) == cache
        distiller.fit(x, targets, epochs=1, batch_size=16, shuffle=False, verbose=0)
        results.append(student.get_weights())
    for cached, stepped in zip(*results):
        np.testing.assert_allclose(cached, stepped, rtol=1e-4, atol=1e-5)


def test_loss_configs_round_trip_through_build_loss_and_toml():
    scheduled = {
        **LOSS_CONFIGS["hint"],
        "weight": 10.0,
        "schedule": {"weight": [[0, 0.0], [2, 10.0]]},
    }
    for entry in [*LOSS_CONFIGS.values(), scheduled]:
        loss = build_loss(**entry)
        config = loss.config_entry()
        assert {k: v for k, v in entry.items() if k != "schedule"}.items() <= config.items()
        rebuilt = build_loss(**config)
        assert rebuilt.config_entry() == config
        assert type(rebuilt).from_config(loss.get_config()).get_config() == loss.get_config()
    run = load_config(None, ['data.dataset="digits"'])
    run.distillation.losses = [
        LossEntry.from_table(build_loss(**entry).config_entry())
        for entry in [*LOSS_CONFIGS.values(), scheduled]
    ]
    run.distillation.weight_init = [WeightInit("block1_conv1", "conv1", "svd")]
    assert config_from_dict(tomllib.loads(to_toml(run))) == run


def test_config_reports_bad_loss_values_and_weight_init_keys():
    with pytest.raises(TinyKDError) as error:
        load_config(
            None,
            [
                'distillation.losses=[{name="hint", schedule={wieght=[[0, 1.0]]}}, '
                '{name="kd", temperature=-1.0}, {name="fsp", teacher_tap="a"}]',
                'distillation.weight_init=[{teacher_layer="a", student="b", projection="pca"}]',
            ],
        )
    message = str(error.value)
    assert "distillation.losses[0]: schedule: 'wieght' is not a scalar of this loss" in message
    assert "distillation.losses[1]: temperature must be positive" in message
    assert "distillation.losses[2]: fsp needs teacher_end_tap and student_end_tap" in message
    assert (
        "distillation.weight_init[0].student: unknown key (did you mean 'student_layer'?)"
        in message
    )
    assert "distillation.weight_init[0].projection: expected one of select, svd" in message


def test_feature_shape_mismatch_names_both_tensors_and_suggests_a_projection():
    entry = {**LOSS_CONFIGS["hint"], "projection": "none"}
    with pytest.raises(TinyKDError) as error:
        Distiller(tiny_student(), tiny_teacher(), [build_loss(**entry)])
    message = str(error.value)
    assert "teacher 't_relu2': (None, 3, 3, 8), student 's_relu1': (None, 6, 6, 3)" in message
    assert 'projection = "conv1x1"' in message


def test_weight_shape_errors_name_both_kernels():
    entry = {**LOSS_CONFIGS["weights"], "projection": "none"}
    with pytest.raises(
        TinyKDError, match=r"teacher \(3, 3, 6, 8\), student \(3, 3, 3, 4\).*learned"
    ):
        Distiller(tiny_student(), tiny_teacher(), [build_loss(**entry)])
    entry = {**LOSS_CONFIGS["weights"], "teacher_layer": "t_conv1"}  # 3×3×1×6 vs 3×3×3×4
    loss = build_loss(**{**entry, "projection": "svd"})
    with pytest.raises(TinyKDError, match=r"larger than the teacher's.*learned"):
        Distiller(tiny_student(), tiny_teacher(), [loss])
    with pytest.raises(TinyKDError, match="no layer 't_relu1' with a kernel.*t_conv1"):
        Distiller(
            tiny_student(),
            tiny_teacher(),
            [build_loss(**{**entry, "teacher_layer": "t_relu1"})],
        )


def test_schedule_callback_sets_weight_and_temperature_per_epoch():
    teacher, student = tiny_teacher(), tiny_student()
    hint = build_loss(
        **LOSS_CONFIGS["hint"], weight=10.0, schedule={"weight": [[0, 0.0], [2, 10.0]]}
    )
    kd = build_loss("kd", temperature=4.0, schedule={"temperature": [[1, 4.0], [3, 1.0]]})
    distiller = Distiller(student, teacher, [hint, kd])
    distiller.compile(optimizer=keras.optimizers.Adam(1e-3))
    x, y = tiny_data()
    history = distiller.fit(
        x,
        distiller.make_targets(x, y, cache_teacher=True),
        epochs=4,
        batch_size=16,
        callbacks=[LossSchedule(distiller.distillation_losses)],
        verbose=0,
    )
    assert history.history[f"{hint.name}_weight"] == pytest.approx([0.0, 5.0, 10.0, 10.0])
    assert history.history[f"{kd.name}_temperature"] == pytest.approx([4.0, 4.0, 2.5, 1.0])
    # Epoch 0 trained with a zero hint weight: the hint term is reported but not added.
    assert history.history["loss"][0] == pytest.approx(
        history.history["hard_loss"][0] + history.history[f"{kd.name}_loss"][0], rel=1e-4
    )


def make_resumable(seed_offset: int = 0):
    teacher, student = tiny_teacher(), tiny_student()
    losses = [
        build_loss(**LOSS_CONFIGS["hint"], schedule={"weight": [[0, 10.0], [1, 50.0]]}),
        build_loss("kd", temperature=3.0),
    ]
    distiller = Distiller(student, teacher, losses)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2))
    return distiller


def test_checkpoint_resume_equals_an_uninterrupted_run(tmp_path):
    x, y = tiny_data()

    def fit(distiller, **kwargs):
        return distiller.fit(
            x,
            distiller.make_targets(x, y, cache_teacher=True),
            batch_size=16,
            shuffle=False,
            verbose=0,
            callbacks=[LossSchedule(distiller.distillation_losses), *kwargs.pop("callbacks", [])],
            **kwargs,
        )

    straight = make_resumable()
    fit(straight, epochs=2)

    checkpoint = str(tmp_path / "ckpt" / "distiller")
    first = make_resumable()
    fit(
        first,
        epochs=1,
        callbacks=[keras.callbacks.ModelCheckpoint(checkpoint, save_weights_only=True)],
    )
    resumed = make_resumable()
    resumed.load_weights(checkpoint)
    fit(resumed, epochs=2, initial_epoch=1)
    for a, b in zip(straight.student.get_weights(), resumed.student.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    projection = straight.distillation_losses[0].trainable_variables
    for a, b in zip(projection, resumed.distillation_losses[0].trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_saved_artefact_is_the_plain_student(tmp_path):
    distiller = make_resumable()
    x, y = tiny_data()
    distiller.fit(x, distiller.make_targets(x, y, True), epochs=1, batch_size=16, verbose=0)
    path = distiller.save_student(tmp_path / "student.keras")
    loaded = keras.models.load_model(path, compile=False)
    assert [layer.name for layer in loaded.layers] == [
        layer.name for layer in distiller.student.layers
    ]
    assert loaded.count_params() == distiller.student.count_params()
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), distiller.predict(x, verbose=0), atol=1e-5
    )
    assert not list(tmp_path.glob(".*")), "no temporary file left behind"


def test_named_tensor_taps_and_evaluate_losses_report_pattern_agreement():
    teacher, student = tiny_teacher(), tiny_student()
    loss = build_loss(
        "activation_boundary", teacher_tap="t_pre", student_tap="s_pre", projection="conv1x1"
    )
    distiller = Distiller(
        student,
        teacher,
        [loss],
        teacher_tensors={"t_pre": teacher.get_layer("t_bn1").output},
        student_tensors={"s_pre": student.get_layer("s_bn1").output},
    )
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2))
    x, y = tiny_data()
    distiller.fit(x, distiller.make_targets(x, y, True), epochs=2, batch_size=16, verbose=0)
    # The training steps normalized the connector with batch statistics and moved its
    # moving averages away from their initial 0 / 1.
    connector_bn = loss.alignment.normalization
    assert not np.allclose(connector_bn.moving_mean.numpy(), 0.0)
    figures = distiller.evaluate_losses(x, y)
    assert set(figures) == {f"{loss.name}_loss", f"{loss.name}_agreement"}
    # The same figures in NumPy: both pre-activations in inference mode, the student's
    # through the connector (1×1 kernel, then BN with its moving statistics).
    teacher_pre = keras.Model(teacher.inputs, teacher.get_layer("t_bn1").output).predict(
        x, verbose=0
    )
    student_pre = keras.Model(student.inputs, student.get_layer("s_bn1").output).predict(
        x, verbose=0
    )
    (kernel,) = loss.alignment.projector.get_weights()
    gamma, beta, moving_mean, moving_variance = connector_bn.get_weights()
    connected = np.einsum("nhwc,cd->nhwd", student_pre, kernel[0, 0])
    connected = gamma * (connected - moving_mean) / np.sqrt(moving_variance + 1e-3) + beta
    on = teacher_pre > 0
    violations = np.where(on, np.maximum(1 - connected, 0) ** 2, np.maximum(1 + connected, 0) ** 2)
    assert figures[f"{loss.name}_loss"] == pytest.approx(violations.sum() / len(x), rel=1e-4)
    agreement = np.mean(on == (connected > 0))
    assert figures[f"{loss.name}_agreement"] == pytest.approx(agreement, abs=1e-6)


def test_initialize_from_teacher_selects_channels_with_their_batch_norm():
    teacher, student = tiny_teacher(), tiny_student()
    teacher.get_layer("t_bn1").set_weights(
        [np.arange(6, dtype=np.float32) + k for k in (1.0, 10.0, 20.0, 30.0)]
    )
    done = initialize_from_teacher(
        teacher,
        student,
        [WeightInit("t_conv1", "s_conv1", "select"), WeightInit("t_conv2", "s_conv2", "svd")],
    )
    assert done[0] == "s_conv1 ← t_conv1 (select: kernel, bias, batch norm)"
    teacher_kernel = teacher.get_layer("t_conv1").get_weights()[0]
    np.testing.assert_array_equal(
        student.get_layer("s_conv1").get_weights()[0], teacher_kernel[..., [0, 2, 4]]
    )
    np.testing.assert_array_equal(
        student.get_layer("s_bn1").get_weights()[0], np.array([1.0, 3.0, 5.0], np.float32)
    )
    with pytest.raises(TinyKDError, match="weight_init\\[0\\].projection"):
        initialize_from_teacher(
            teacher,
            student,
            [WeightInit("t_conv1", "s_conv1", "pca")],
        )


def test_teacher_from_keras_file_keras_saved_model_and_plain_saved_model(tmp_path):
    from tinykd.teachers import load_teacher

    x, y = tiny_data()
    teacher = tiny_teacher()
    expected = teacher.predict(x, verbose=0)
    teacher.save(tmp_path / "teacher.keras")
    teacher.save(tmp_path / "keras_saved_model", save_format="tf")

    class Exported(tf.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec((None, 6, 6, 1), tf.float32)])
        def serve(self, images):
            return {"logits": self.model(images, training=False)}

    exported = Exported(teacher)
    tf.saved_model.save(
        exported,
        str(tmp_path / "plain_saved_model"),
        signatures={"serving_default": exported.serve},
    )
    for name in ("teacher.keras", "keras_saved_model", "plain_saved_model"):
        loaded = load_teacher(tmp_path / name, x.shape[1:], 3).model
        np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, atol=1e-5)
        losses = [build_loss("kd"), build_loss("gradient")]
        if name != "plain_saved_model":
            losses.append(build_loss(**LOSS_CONFIGS["hint"]))
        distiller = Distiller(tiny_student(), loaded, losses)
        distiller.compile(optimizer=keras.optimizers.Adam(1e-3))
        history = distiller.fit(
            x, distiller.make_targets(x, y, True), epochs=1, batch_size=16, verbose=0
        )
        assert np.isfinite(history.history["loss"][0])
    with pytest.raises(TinyKDError, match="no layer 't_relu2' to tap"):
        Distiller(
            tiny_student(),
            load_teacher(tmp_path / "plain_saved_model", x.shape[1:], 3).model,
            [build_loss(**LOSS_CONFIGS["hint"])],
        )


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from tinykd._keras import keras, tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
    sys.path.insert(0, sys.argv[1])
    from test_losses_training import LOSS_CONFIGS, tiny_data, tiny_student, tiny_teacher
    from tinykd.distill import Distiller, build_loss

    def run(strategy):
        with strategy.scope():
            teacher, student = tiny_teacher(), tiny_student(batch_norm=False)
            # Linear regressor: a BN's statistics would differ per replica (8 vs 16 samples).
            hint = build_loss(**LOSS_CONFIGS["hint"], regressor="linear")
            distiller = Distiller(student, teacher, [build_loss("kd"), hint])
            distiller.compile(optimizer=keras.optimizers.SGD(0.1))
        x, y = tiny_data(32)
        targets = distiller.make_targets(x, y, cache_teacher=True)
        dataset = tf.data.Dataset.from_tensor_slices((x, targets)).batch(16)
        history = distiller.fit(dataset, epochs=2, verbose=0)
        return strategy.num_replicas_in_sync, history.history["loss"], student.get_weights()

    replicas, mirrored_loss, mirrored = run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    _, single_loss, single = run(tf.distribute.get_strategy())
    difference = max(float(np.max(np.abs(a - b))) for a, b in zip(mirrored, single))
    print(json.dumps({"replicas": replicas, "loss": mirrored_loss, "single_loss": single_loss,
                      "difference": difference}))
    """
)


def test_two_replica_mirrored_strategy_trains_like_one_device(tmp_path):
    """Two logical CPUs, no batch norm: the mirrored update must equal the single-device one."""
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED_SCRIPT)
    environment = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    result = subprocess.run(
        [sys.executable, str(script), str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    import json

    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    assert report["loss"] == pytest.approx(report["single_loss"], rel=1e-4)
    assert report["difference"] < 1e-5
