"""One model that averages several: an ensemble teacher, or the members a strategy trained.

Averaging in *logit* space keeps each member's confidence scale; averaging in *probability*
space is the classic ensemble (its output, the log of the mean probabilities, is a valid
logit vector: its softmax is exactly the mean of the members' softmaxes).
"""

from __future__ import annotations

from tinykd._keras import keras, tf

LOGIT_SPACE, PROBABILITY_SPACE = "logits", "probabilities"
SPACES = (LOGIT_SPACE, PROBABILITY_SPACE)


@keras.saving.register_keras_serializable(package="tinykd")
class LogMeanProbabilities(keras.layers.Layer):
    """log(mean softmax) over a list of logit tensors: the probability-space average."""

    def call(self, logits):
        stacked = tf.stack([tf.nn.softmax(each, axis=-1) for each in logits], axis=0)
        return tf.math.log(tf.reduce_mean(stacked, axis=0))


def ensemble_model(
    models: list[keras.Model], name: str = "ensemble", space: str = LOGIT_SPACE
) -> keras.Model:
    """One model whose logits average ``models``' (in ``space``); a single model is itself."""
    if space not in SPACES:
        raise ValueError(f"unknown ensemble space {space!r}; choose one of {SPACES}")
    if len(models) == 1:
        return models[0]
    inputs = keras.Input(models[0].inputs[0].shape[1:])
    # Members often share a name (generations of one builder); nest uniquely named views.
    members = [
        keras.Model(model.inputs, model.outputs, name=f"{name}_member{index + 1}")
        for index, model in enumerate(models)
    ]
    outputs = [member(inputs, training=False) for member in members]
    if space == LOGIT_SPACE:
        averaged = keras.layers.Average()(outputs)
    else:
        averaged = LogMeanProbabilities(name="log_mean_probabilities")(outputs)
    return keras.Model(inputs, averaged, name=name)
