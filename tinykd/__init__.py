"""tinykd: distill a Keras teacher into a tiny int8 student and measure it on a microcontroller.

Importing tinykd switches TensorFlow to legacy Keras (tf-keras) before TensorFlow is
imported anywhere, because tensorflow-model-optimization only accepts tf-keras models
and silently flips the switch itself when imported: doing it here means import order
never matters to a user.
"""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
