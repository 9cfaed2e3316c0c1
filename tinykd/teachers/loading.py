"""Load a teacher from any common format as a tf-keras model the distiller can call.

| file | loaded by | layers tappable | input gradients |
|---|---|---|---|
| ``.keras``/``.h5`` saved by tf-keras (Keras 2) | tf-keras | yes | yes |
| Keras 2 SavedModel folder (``keras_metadata.pb``) | tf-keras | yes | yes |
| ``.keras``/``.h5`` saved by Keras 3 (``tf.keras`` in TF ≥ 2.16) | Keras 3 | no | yes |
| SavedModel with a ``serving_default`` signature (Keras 3 ``export()``, ``tf.saved_model.save``) | TensorFlow | no | yes |
| float ``.tflite`` | LiteRT | no | no |

The student stays tf-keras (tensorflow-model-optimization needs it). A teacher tf-keras
cannot rebuild is wrapped as one :class:`OutputsOnlyTeacher` layer: logit losses work,
losses on its inner layers cannot, and :func:`check_teacher_supports_losses` says so before
any training. Keras files are checked for code first (:mod:`tinykd.teachers.safety`).
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinykd._keras import keras, tf
from tinykd.errors import TinyKDError
from tinykd.teachers.outputs import (
    activation_of_last_layer,
    outputs_look_like_probabilities,
    with_logits,
)
from tinykd.teachers.safety import check_no_code

TF_KERAS, KERAS3, SAVED_MODEL, TFLITE = "tf-keras", "Keras 3", "SavedModel signature", "TFLite"
SUPPORTED = (
    ".keras/.h5 (tf-keras or Keras 3), a SavedModel folder (Keras 2, Keras 3 export() or "
    "tf.saved_model.save with a serving_default signature), or a float .tflite"
)


@dataclass
class LoadedTeacher:
    """A teacher ready to distill from, and what its format allows."""

    model: keras.Model
    format: str  # one of TF_KERAS, KERAS3, SAVED_MODEL, TFLITE
    path: str
    notes: list[str] = field(default_factory=list)
    source: object = None  # the foreign model (Keras 3, SavedModel) the wrapper calls

    @property
    def layers_tappable(self) -> bool:
        return self.format == TF_KERAS

    @property
    def gradients(self) -> bool:
        return self.format != TFLITE

    def parameter_count(self) -> int | None:
        """Its weights' sizes summed (None for a .tflite: LiteRT does not list them)."""
        if self.format == TFLITE:
            return None
        variables = getattr(self.source, "variables", None) or self.model.variables
        return sum(int(np.prod(variable.shape)) for variable in variables)

    def describe(self) -> str:
        """E.g. ``teacher.keras (Keras 3 teacher, 52,138 parameters)``."""
        count = self.parameter_count()
        size = f", {count:,} parameters" if count is not None else ""
        return f"{self.path} ({self.format} teacher{size})"


class OutputsOnlyTeacher(keras.layers.Layer):
    """A teacher tf-keras cannot rebuild, called as one function: inputs → outputs."""

    def __init__(self, function, num_outputs: int, teacher_format: str, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self._function = [function]  # a list: keep tf-keras from tracking a foreign object
        self.num_outputs = num_outputs
        self.teacher_format = teacher_format

    def call(self, inputs):
        outputs = self._function[0](inputs)
        outputs.set_shape((None, self.num_outputs))
        return outputs

    def compute_output_shape(self, input_shape):
        return tf.TensorShape((input_shape[0], self.num_outputs))


def keras_version_of(path: Path) -> str:
    """The Keras version that wrote a ``.keras`` or ``.h5`` file ("" when not recorded)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("metadata.json")).get("keras_version", "")
    import h5py

    with h5py.File(path, "r") as handle:
        version = handle.attrs.get("keras_version", "")
    return version.decode() if isinstance(version, bytes) else str(version)


def load_teacher(
    path: str | Path, input_shape, num_classes: int, *, trust_code: bool = False, sample=None
) -> LoadedTeacher:
    """The teacher at ``path``, checked against the data; probabilities become logits.

    ``sample``: a few inputs, run once to check the output and detect probability outputs.
    """
    path = Path(path)
    if not path.exists():
        raise TinyKDError(f"Teacher model {path} does not exist.")
    input_shape = tuple(int(d) for d in input_shape)
    if path.is_dir():
        if not (path / "saved_model.pb").exists():
            raise TinyKDError(f"Teacher folder {path} is not a SavedModel (no saved_model.pb).")
        if (path / "keras_metadata.pb").exists():
            loaded = _load_tf_keras(path, trust_code)
        else:
            loaded = _saved_model_teacher(path, input_shape, num_classes)
    elif path.suffix.lower() == ".tflite":
        loaded = _tflite_teacher(path, input_shape, num_classes)
    elif path.suffix.lower() in (".keras", ".h5", ".hdf5"):
        try:
            version = keras_version_of(path)
        except Exception as exc:
            raise TinyKDError(
                f"Cannot read the teacher {path}: {str(exc).splitlines()[0]} "
                "(a truncated or corrupt file?)"
            ) from None
        if version.startswith("3"):
            loaded = _keras3_teacher(path, input_shape, num_classes, trust_code)
        else:
            loaded = _load_tf_keras(path, trust_code)
    else:
        raise TinyKDError(f"Teacher {path}: unknown format; give {SUPPORTED}.")
    _check_shapes(loaded, input_shape, num_classes)
    return _logits_not_probabilities(loaded, sample)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _load_tf_keras(path: Path, trust_code: bool) -> LoadedTeacher:
    check_no_code(path, trust_code)
    model = _load_keras_file(keras.models.load_model, "tf-keras", path, trust_code)
    return LoadedTeacher(model, TF_KERAS, str(path))


def _load_keras_file(load, library: str, path: Path, trust_code: bool):
    """``load`` (tf-keras' or Keras 3's) the file, one readable error if it cannot, and check
    its inputs and outputs."""
    try:
        model = load(path, compile=False, safe_mode=not trust_code)
    except Exception as exc:
        raise TinyKDError(
            f"Cannot load the teacher {path} with {library}: {_first_line(exc)}"
        ) from None
    _require_one_input_one_output(model, path)
    return model


def _require_one_input_one_output(model, path) -> None:
    """tf-keras and Keras 3 models alike: one image in, one vector of class scores out."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise TinyKDError(
            f"Teacher {path} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
            "tinykd needs one image input and one output (the class scores)."
        )


def _wrap(function, input_shape, num_classes, teacher_format, path, name, source=None):
    inputs = keras.Input(input_shape)
    outputs = OutputsOnlyTeacher(function, num_classes, teacher_format, name=name)(inputs)
    # Named after the file: the results table shows which teacher it was.
    model = keras.Model(inputs, outputs, name=re.sub(r"\W", "_", Path(path).stem) or name)
    return LoadedTeacher(model, teacher_format, str(path), source=source)


def _check_declared_input(path, declared, input_shape) -> None:
    declared = tuple(None if d is None or d < 0 else int(d) for d in declared)
    if len(declared) != len(input_shape) + 1 or any(
        d is not None and d != e for d, e in zip(declared[1:], input_shape)
    ):
        hint = ""
        if len(declared) == 4 and declared[1] == input_shape[-1]:
            hint = " It looks channels-first; tinykd needs channels-last (N, H, W, C) teachers."
        raise TinyKDError(
            f"Teacher {path} takes inputs of shape {declared}; the data has "
            f"(None, {', '.join(map(str, input_shape))}).{hint}"
        )


def _keras3_teacher(path: Path, input_shape, num_classes, trust_code) -> LoadedTeacher:
    check_no_code(path, trust_code)
    try:
        import keras as keras3
    except ImportError:
        raise TinyKDError(
            f"The teacher {path} was saved by Keras 3; install it beside tf-keras "
            "(pip install 'keras>=3') or save the teacher with tf-keras."
        ) from None
    model = _load_keras_file(keras3.saving.load_model, "Keras 3", path, trust_code)
    _check_declared_input(path, tuple(model.inputs[0].shape), input_shape)
    return _wrap(
        lambda images: model(images, training=False),
        input_shape,
        num_classes,
        KERAS3,
        path,
        "keras3",
        source=model,
    )


def _saved_model_teacher(path: Path, input_shape, num_classes) -> LoadedTeacher:
    try:
        saved = tf.saved_model.load(str(path))
    except Exception as exc:
        raise TinyKDError(f"Cannot load the SavedModel {path}: {_first_line(exc)}") from None
    if "serving_default" not in saved.signatures:
        raise TinyKDError(
            f"The SavedModel {path} has no serving_default signature; save it with "
            "tf.saved_model.save(module, path, signatures={'serving_default': module.serve})."
        )
    signature = saved.signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    outputs = signature.structured_outputs
    if len(inputs) != 1 or len(outputs) != 1:
        raise TinyKDError(
            f"The SavedModel {path} must take one input and return one output (the class "
            f"scores); its signature takes {sorted(inputs)} and returns {sorted(outputs)}."
        )
    (input_name,), (output_name,) = inputs, outputs
    _check_declared_input(path, tuple(inputs[input_name].shape), input_shape)

    def call(images):
        return signature(**{input_name: images})[output_name]

    call.saved_model = saved  # its variables live as long as the wrapper calls it
    return _wrap(call, input_shape, num_classes, SAVED_MODEL, path, "saved_model", source=saved)


class TfliteFunction:
    """A float .tflite run by LiteRT on a batch of inputs (resized to the batch)."""

    def __init__(self, path: Path):
        from ai_edge_litert.interpreter import Interpreter

        try:
            self.interpreter = Interpreter(model_path=str(path))
        except Exception as exc:
            raise TinyKDError(
                f"Cannot load the .tflite teacher {path}: {_first_line(exc)}"
            ) from None
        inputs, outputs = (
            self.interpreter.get_input_details(),
            self.interpreter.get_output_details(),
        )
        if len(inputs) != 1 or len(outputs) != 1:
            raise TinyKDError(
                f"The .tflite teacher {path} has {len(inputs)} inputs and {len(outputs)} "
                "outputs; tinykd needs one input and one output (the class scores)."
            )
        self.input, self.output = inputs[0], outputs[0]
        if self.input["dtype"] != np.float32 or self.output["dtype"] != np.float32:
            raise TinyKDError(
                f"The .tflite teacher {path} has {np.dtype(self.input['dtype']).name} inputs and "
                f"{np.dtype(self.output['dtype']).name} outputs; a teacher must be a float "
                "model (convert it without quantization)."
            )
        self.declared = tuple(int(d) for d in self.input["shape_signature"])
        self.resizable = self.declared[0] == -1
        self.batch = int(self.input["shape"][0])
        self.interpreter.allocate_tensors()

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, dtype=np.float32)
        if not self.resizable:  # a fixed batch size (usually 1): one invoke per sample
            return np.concatenate([self._invoke(one[np.newaxis]) for one in images])
        if len(images) != self.batch:
            self.interpreter.resize_tensor_input(self.input["index"], images.shape)
            self.interpreter.allocate_tensors()
            self.batch = len(images)
        return self._invoke(images)

    def _invoke(self, images: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self.input["index"], images)
        self.interpreter.invoke()
        output = self.interpreter.get_tensor(self.output["index"])
        return np.asarray(output, dtype=np.float32).reshape(len(images), -1)


def _tflite_teacher(path: Path, input_shape, num_classes) -> LoadedTeacher:
    function = TfliteFunction(path)
    _check_declared_input(path, function.declared, input_shape)

    def call(images):
        return tf.numpy_function(function, [images], tf.float32, stateful=False)

    return _wrap(call, input_shape, num_classes, TFLITE, path, "tflite")


def _check_shapes(loaded: LoadedTeacher, input_shape, num_classes) -> None:
    model = loaded.model
    actual = tuple(model.inputs[0].shape[1:])
    if actual != tuple(input_shape):
        hint = ""
        if len(actual) == 3 and actual[0] == input_shape[-1]:
            hint = " It looks channels-first; tinykd needs channels-last (N, H, W, C) teachers."
        raise TinyKDError(
            f"Teacher {loaded.path} takes inputs of shape {actual}; the data has "
            f"{tuple(input_shape)}.{hint}"
        )
    if model.outputs[0].shape[-1] != num_classes:
        raise TinyKDError(
            f"Teacher {loaded.path} predicts {model.outputs[0].shape[-1]} classes; the data has "
            f"{num_classes}."
        )


def _logits_not_probabilities(loaded: LoadedTeacher, sample) -> LoadedTeacher:
    """Detect probability outputs (last-layer activation, else rows summing to 1): log them."""
    kind = activation_of_last_layer(loaded.source or loaded.model)
    how = f"its last layer applies {kind}"
    if kind is None and sample is not None and len(sample):
        outputs = loaded.model.predict(np.asarray(sample[:64]), verbose=0)
        if outputs_look_like_probabilities(outputs):
            kind, how = "softmax", "its outputs are in [0, 1] and sum to 1"
    if kind is None:
        return loaded
    converted = "log-probabilities" if kind == "softmax" else "logits (log p − log(1 − p))"
    loaded.notes.append(
        f"The teacher outputs probabilities ({how}); tinykd distills from its {converted}, "
        "since KD losses soften logits."
    )
    loaded.model = with_logits(loaded.model, kind)
    return loaded


def check_teacher_supports_losses(loaded: LoadedTeacher, losses, weight_init=()) -> None:
    """Every loss (:class:`~tinykd.recipe.LossEntry`) and ``weight_init`` can read what it
    needs from this teacher's format, or one clear error."""
    from tinykd.distill.losses.base import INPUT, LOGITS, parse_gradient_tap

    problems = []
    for entry in losses:
        loss = entry.build()
        for tap in loss.teacher_taps:
            gradient = parse_gradient_tap(tap)
            plain = gradient[1] if gradient else tap
            if plain not in (LOGITS, INPUT) and not loaded.layers_tappable:
                problems.append(
                    f"loss {entry.name!r} reads the teacher layer {plain!r}: feature losses "
                    "need a Keras teacher tinykd can open layer by layer (a tf-keras .keras/.h5 "
                    f"file or Keras 2 SavedModel); this {loaded.format} teacher exposes only "
                    "its outputs"
                )
            elif gradient and not loaded.gradients:
                problems.append(
                    f"loss {entry.name!r} needs the teacher's gradients, which a "
                    f"{loaded.format} teacher cannot give; use a Keras or SavedModel teacher"
                )
    if weight_init and not loaded.layers_tappable:
        problems.append(
            "distillation.weight_init copies the teacher's kernels: it needs a Keras teacher "
            f"tinykd can open layer by layer; this {loaded.format} teacher exposes only its outputs"
        )
    if problems:
        raise TinyKDError(f"Teacher {loaded.path}: " + "; ".join(sorted(set(problems))) + ".")
