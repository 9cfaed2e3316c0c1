"""Teachers from every supported format, saved by the real library in the test itself.

One Keras 3 teacher is trained briefly on digits and saved as Keras 3 .keras/.h5, Keras 3
``export()``, a plain ``tf.saved_model.save`` of a ``tf.Module``, a float .tflite, and — its
weights copied into the same architecture built with tf-keras — tf-keras .keras/.h5/SavedModel.
Each must give the same soft targets (the reference: the Keras 3 model's own predict),
distill a student for one epoch and reach an int8 model.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinykd._keras import keras, tf
from tinykd.errors import TinyKDError
from tinykd.recipe import Distillation, LossEntry, Recipe, WeightInit

keras3 = pytest.importorskip("keras", minversion="3")

SLICE = 240  # training samples: one epoch of distillation takes about a second
FORMATS = [
    "keras3.keras",
    "keras3.h5",
    "keras3_export",
    "tf_module_saved_model",
    "float.tflite",
    "tf_keras.keras",
    "tf_keras.h5",
    "tf_keras_saved_model",
]


def keras3_teacher(input_shape, num_classes):
    inputs = keras3.Input(input_shape)
    hidden = keras3.layers.Conv2D(8, 3, activation="relu", name="t_conv")(inputs)
    hidden = keras3.layers.Flatten()(hidden)
    outputs = keras3.layers.Dense(num_classes, name="t_logits")(hidden)
    return keras3.Model(inputs, outputs)


def tf_keras_twin(input_shape, num_classes):
    inputs = keras.Input(input_shape)
    hidden = keras.layers.Conv2D(8, 3, activation="relu", name="t_conv")(inputs)
    hidden = keras.layers.Flatten()(hidden)
    outputs = keras.layers.Dense(num_classes, name="t_logits")(hidden)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def saved_teachers(tmp_path_factory, digits):
    """{format: path} of one trained teacher, plus the reference logits on the test images."""
    folder = tmp_path_factory.mktemp("teachers")
    keras3.utils.set_random_seed(0)
    model = keras3_teacher(digits.input_shape, digits.num_classes)
    model.compile(
        optimizer="adam",
        loss=keras3.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(digits.x_train, digits.y_train, epochs=3, batch_size=64, verbose=0)
    paths = {name: folder / name for name in FORMATS}
    model.save(paths["keras3.keras"])
    model.save(paths["keras3.h5"])
    model.export(str(paths["keras3_export"]), verbose=False)

    class Exported(tf.Module):
        def __init__(self, wrapped):
            super().__init__()
            self.wrapped = wrapped

        @tf.function(input_signature=[tf.TensorSpec((None, *digits.input_shape), tf.float32)])
        def serve(self, images):
            return {"scores": self.wrapped(images, training=False)}

    exported = Exported(model)
    tf.saved_model.save(
        exported,
        str(paths["tf_module_saved_model"]),
        signatures={"serving_default": exported.serve},
    )
    converter = tf.lite.TFLiteConverter.from_saved_model(str(paths["keras3_export"]))
    paths["float.tflite"].write_bytes(converter.convert())
    twin = tf_keras_twin(digits.input_shape, digits.num_classes)
    twin.set_weights(model.get_weights())
    twin.save(paths["tf_keras.keras"])
    twin.save(paths["tf_keras.h5"])
    twin.save(paths["tf_keras_saved_model"], save_format="tf")
    # predict, as the loaded teachers are run below: the same batches of 32, since the CPU
    # kernels may round differently for another batch size (5.96e-07 seen with Eigen's
    # convolutions on an AVX2-only machine, one call on all 359 images).
    reference = model.predict(digits.x_test, verbose=0)
    return paths, reference


def test_every_format_gives_the_same_soft_targets(saved_teachers, digits):
    from tinykd.teachers import load_teacher

    paths, reference = saved_teachers
    rows = ["| teacher format | loaded as | max abs logit difference |", "|---|---|---|"]
    differences = {}
    for name, path in paths.items():
        loaded = load_teacher(path, digits.input_shape, digits.num_classes, sample=digits.x_train)
        logits = loaded.model.predict(digits.x_test, verbose=0)
        differences[name] = float(np.max(np.abs(logits - reference)))
        rows.append(f"| {name} | {loaded.format} | {differences[name]:.2e} |")
        assert loaded.notes == []  # logits in, no probability conversion
    print("\n" + "\n".join(rows))
    assert max(differences.values()) <= 1e-4, differences
    # The same graph run by TensorFlow: identical, not only close.
    for name in ("keras3.keras", "keras3.h5", "tf_keras.keras", "tf_keras.h5"):
        assert differences[name] == 0.0, (name, differences[name])


@pytest.mark.parametrize("name", FORMATS)
def test_each_format_distills_one_epoch_and_reaches_int8(saved_teachers, digits_split, name):
    from tinykd.compress import convert_int8
    from tinykd.measure import TflmModel
    from tinykd.models import build_model
    from tinykd.teachers import check_teacher_supports_losses, load_teacher
    from tinykd.training import train

    paths, _ = saved_teachers
    data = digits_split
    loaded = load_teacher(paths[name], data.input_shape, data.num_classes)
    losses = [LossEntry("kd", {"temperature": 4.0})]
    check_teacher_supports_losses(loaded, losses)
    small = type(data)(
        data.x_train[:SLICE],
        data.y_train[:SLICE],
        *[
            getattr(data, f)
            for f in ("x_val", "y_val", "x_test", "y_test", "class_names", "name", "source")
        ],
    )
    student = build_model("plain_cnn", data.input_shape, data.num_classes, 0.5, seed=0)
    recipe = Recipe(epochs=1, batch_size=64, learning_rate=3e-3, seed=0)
    result = train(student, small, recipe, Distillation(loaded.model, losses))
    tflite = convert_int8(
        result.model, calibration_images=small.x_train, num_calibration_samples=20
    )
    outputs = TflmModel(tflite).predict_int8(data.x_test[:4])
    assert outputs.shape == (4, data.num_classes)


@pytest.mark.parametrize("name", ["keras3.keras", "keras3_export", "float.tflite"])
def test_feature_losses_need_a_keras_teacher(saved_teachers, digits, name):
    from tinykd.teachers import check_teacher_supports_losses, load_teacher

    paths, _ = saved_teachers
    loaded = load_teacher(paths[name], digits.input_shape, digits.num_classes)
    hint = LossEntry("hint", {"teacher_tap": "t_conv", "student_tap": "conv1"})
    with pytest.raises(TinyKDError, match="feature losses need a Keras teacher"):
        check_teacher_supports_losses(loaded, [hint])
    pair = WeightInit("t_conv", "conv1")
    with pytest.raises(TinyKDError, match="weight_init copies the teacher's kernels"):
        check_teacher_supports_losses(loaded, [LossEntry("kd")], [pair])


def test_a_tflite_teacher_refuses_gradient_losses(saved_teachers, digits):
    from tinykd.teachers import check_teacher_supports_losses, load_teacher

    paths, _ = saved_teachers
    loaded = load_teacher(paths["float.tflite"], digits.input_shape, digits.num_classes)
    with pytest.raises(TinyKDError, match="gradients"):
        check_teacher_supports_losses(loaded, [LossEntry("gradient")])
    keras3_loaded = load_teacher(paths["keras3.keras"], digits.input_shape, digits.num_classes)
    check_teacher_supports_losses(keras3_loaded, [LossEntry("gradient")])  # TF graphs have them


def test_tf_keras_teacher_layers_stay_tappable(saved_teachers, digits):
    from tinykd.teachers import check_teacher_supports_losses, load_teacher

    paths, _ = saved_teachers
    loaded = load_teacher(paths["tf_keras.h5"], digits.input_shape, digits.num_classes)
    hint = LossEntry("hint", {"teacher_tap": "t_conv", "student_tap": "conv1"})
    check_teacher_supports_losses(loaded, [hint])
    assert loaded.model.get_layer("t_conv").output.shape[1:] == (6, 6, 8)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_softmax_teacher_is_distilled_from_log_probabilities(tmp_path, digits):
    from tinykd.teachers import load_teacher

    keras3.utils.set_random_seed(1)
    logits_model = keras3_teacher(digits.input_shape, digits.num_classes)
    probabilities = keras3.Model(
        logits_model.inputs, keras3.layers.Softmax()(logits_model.outputs[0])
    )
    probabilities.save(tmp_path / "softmax.keras")
    logits = np.asarray(logits_model(digits.x_test[:32]))
    loaded = load_teacher(tmp_path / "softmax.keras", digits.input_shape, digits.num_classes)
    assert "outputs probabilities" in loaded.notes[0] and "softmax" in loaded.notes[0]
    distilled_from = loaded.model.predict(digits.x_test[:32], verbose=0)
    # log softmax(z) = z − logsumexp(z), computed here independently.
    expected = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(distilled_from, expected, atol=1e-4)
    np.testing.assert_allclose(softmax(distilled_from / 4), softmax(logits / 4), atol=1e-5)


def test_probabilities_are_detected_from_the_outputs_alone(tmp_path, digits):
    """A SavedModel has no layers to inspect: rows in [0, 1] summing to 1 give it away."""
    from tinykd.teachers import load_teacher

    keras3.utils.set_random_seed(2)
    logits_model = keras3_teacher(digits.input_shape, digits.num_classes)

    class Probabilities(tf.Module):
        def __init__(self, wrapped):
            super().__init__()
            self.wrapped = wrapped

        @tf.function(input_signature=[tf.TensorSpec((None, *digits.input_shape), tf.float32)])
        def serve(self, images):
            return {"probabilities": tf.nn.softmax(self.wrapped(images))}

    module = Probabilities(logits_model)
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serving_default": module.serve})
    without_sample = load_teacher(tmp_path / "sm", digits.input_shape, digits.num_classes)
    assert without_sample.notes == []
    loaded = load_teacher(
        tmp_path / "sm", digits.input_shape, digits.num_classes, sample=digits.x_train
    )
    assert "sum to 1" in loaded.notes[0]
    logits = np.asarray(logits_model(digits.x_test[:16]))
    expected = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(
        loaded.model.predict(digits.x_test[:16], verbose=0), expected, atol=1e-4
    )


def test_wrong_input_shape_and_channels_first_teacher(tmp_path, digits):
    from tinykd.teachers import load_teacher

    model = keras3.Sequential(
        [keras3.Input((1, 8, 8)), keras3.layers.Flatten(), keras3.layers.Dense(10)]
    )
    model.save(tmp_path / "chw.keras")
    with pytest.raises(TinyKDError, match="channels-first"):
        load_teacher(tmp_path / "chw.keras", digits.input_shape, digits.num_classes)
    with pytest.raises(TinyKDError, match="unknown format"):
        (tmp_path / "model.onnx").write_bytes(b"onnx")
        load_teacher(tmp_path / "model.onnx", digits.input_shape, digits.num_classes)


def marker_lambda(marker):
    """A function that leaves a file behind when it runs: proof that loading ran code."""
    return eval(f"lambda x: (__import__('pathlib').Path({str(marker)!r}).touch(), x)[1]")


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_lambda_teacher_code_does_not_run_without_trust_code(tmp_path, suffix):
    from tinykd.teachers import load_teacher

    marker = tmp_path / "code_ran"
    inputs = keras.Input((8, 8, 1))
    hidden = keras.layers.Lambda(marker_lambda(marker), name="side_effect")(inputs)
    outputs = keras.layers.Dense(10)(keras.layers.Flatten()(hidden))
    keras.Model(inputs, outputs).save(tmp_path / f"lambda{suffix}")
    marker.unlink()  # building the model ran the lambda once
    with pytest.raises(TinyKDError, match="trust_code") as error:
        load_teacher(tmp_path / f"lambda{suffix}", (8, 8, 1), 10)
    assert "Lambda layer 'side_effect'" in str(error.value)
    assert not marker.exists()
    loaded = load_teacher(tmp_path / f"lambda{suffix}", (8, 8, 1), 10, trust_code=True)
    loaded.model.predict(np.zeros((1, 8, 8, 1), np.float32), verbose=0)
    assert marker.exists()  # trusted: the same file runs


def test_keras3_lambda_teacher_is_refused_too(tmp_path):
    from tinykd.teachers import load_teacher

    marker = tmp_path / "code_ran"
    inputs = keras3.Input((8, 8, 1))
    hidden = keras3.layers.Lambda(marker_lambda(marker), name="side_effect")(inputs)
    outputs = keras3.layers.Dense(10)(keras3.layers.Flatten()(hidden))
    keras3.Model(inputs, outputs).save(tmp_path / "lambda3.keras")
    marker.unlink(missing_ok=True)
    with pytest.raises(TinyKDError, match="trust_code"):
        load_teacher(tmp_path / "lambda3.keras", (8, 8, 1), 10)
    assert not marker.exists()


def test_truncated_teacher_file_is_one_readable_error(tmp_path, saved_teachers, digits):
    from tinykd.teachers import load_teacher

    paths, _ = saved_teachers
    for name in ("keras3.keras", "tf_keras.h5"):
        data = paths[name].read_bytes()
        broken = tmp_path / name
        broken.write_bytes(data[: len(data) // 2])
        with pytest.raises(TinyKDError, match="teacher"):
            load_teacher(broken, digits.input_shape, digits.num_classes)


@pytest.mark.parametrize("name", ["keras3.keras", "float.tflite"])
def test_the_pipeline_runs_with_a_loaded_teacher(saved_teachers, name):
    """The run's rows: a Keras 3 teacher gets an int8 row with its own size; a .tflite none."""
    import io

    from tinykd.config import config_from_dict
    from tinykd.pipeline import run_distillation
    from tinykd.progress import Progress

    paths, _ = saved_teachers
    config = config_from_dict(
        {
            "data": {"dataset": "digits", "train_limit": SLICE, "test_limit": 40},
            "teacher": {"path": str(paths[name])},
            "student": {"epochs": 1, "width": 0.5},
            "quantization": {"calibration_samples": 20},
        }
    )
    printed = io.StringIO()
    _, rows, notes = run_distillation(config, Progress(stream=printed))
    assert "[2] Teacher (loaded from teacher.path)" in printed.getvalue()
    assert f"loaded {paths[name]}" in printed.getvalue()
    if name == "float.tflite":
        assert [row.role for row in rows] == ["scratch", "distilled"]
        assert any("float .tflite" in note and "no int8 row" in note for note in notes)
    else:
        assert [row.role for row in rows] == ["teacher", "scratch", "distilled"]
        # conv 3×3×1→8 (+8 biases), dense 6·6·8→10 (+10); MACs: 6·6·8·9 and 288·10
        assert rows[0].params == 3 * 3 * 8 + 8 + 288 * 10 + 10
        assert rows[0].macs == 6 * 6 * 8 * 9 + 288 * 10
        assert rows[0].architecture == "keras3"
