"""The one place that imports TensorFlow and Keras for the whole package.

Write ``from tinykd._keras import keras, tf`` everywhere: ``keras`` is tf-keras (Keras 2),
the only Keras that tensorflow-model-optimization accepts.
"""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

__all__ = ["keras", "tf"]
