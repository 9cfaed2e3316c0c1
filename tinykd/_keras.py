"""The one place that imports TensorFlow and Keras for the whole package.

Write ``from tinykd._keras import keras, tf`` everywhere: ``keras`` is tf-keras (Keras 2),
the only Keras that tensorflow-model-optimization accepts.
"""

import os
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow turns its oneDNN kernels on by itself only on CPUs with neural-network features
# (AVX-512 VNNI/BF16, AMX: its 2.9 release notes); elsewhere (seen on an AVX2-only AMD EPYC)
# convolutions run on Eigen, there 2.7x slower for the demo's teacher (an epoch: 324 s with
# Eigen, 118 s with oneDNN, 2 threads, bench/kd_sweep.py's epoch lines).
# On unless the user says TF_ENABLE_ONEDNN_OPTS=0.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from tinykd._quiet import quiet_native_stderr  # noqa: E402

with quiet_native_stderr() as _import_log:
    try:
        import tensorflow as tf
        import tf_keras as keras

        # Device discovery logs CUDA probing on fd 2; do it here, silenced, once.
        tf.config.list_physical_devices()
    except Exception:
        sys.stderr.write("".join(_import_log))
        raise

tf.get_logger().setLevel("ERROR")

__all__ = ["keras", "tf"]
