"""Figures from a device run: accuracy, agreement with the host, latency percentiles.

Accuracy is computed over the answered samples (the report always shows how many that
is, and the failed ones with their reasons). Agreement compares the device's int8 outputs
with the TFLM host interpreter's, sample by sample: exactly (all outputs equal) and by
predicted class. Tasks other than classification register their metric in ``TASK_METRICS``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tinykd.registry import Registry

TASK_METRICS: Registry[Callable[..., dict]] = Registry("task metric")


@TASK_METRICS.register("classification")
def classification_metrics(
    device_outputs: np.ndarray, answered: np.ndarray, labels: np.ndarray, host_outputs: np.ndarray
) -> dict:
    """Top-1 accuracy on the device, the host's on the same samples, and their agreement."""
    device_class = device_outputs.argmax(axis=1)
    host_class = host_outputs.argmax(axis=1)
    count = int(answered.sum())
    if count == 0:
        return {"answered": 0, "accuracy": None, "agreement_exact": None, "agreement_class": None}
    return {
        "answered": count,
        "accuracy": float(np.mean(device_class[answered] == labels[answered])),
        "accuracy_counting_failed_as_wrong": float(
            np.sum(device_class[answered] == labels[answered]) / len(labels)
        ),
        "host_accuracy_same_samples": float(np.mean(host_class[answered] == labels[answered])),
        "agreement_exact": float(
            np.mean(np.all(device_outputs[answered] == host_outputs[answered], axis=1))
        ),
        "agreement_class": float(np.mean(device_class[answered] == host_class[answered])),
        "max_abs_output_difference": int(
            np.max(
                np.abs(
                    device_outputs[answered].astype(np.int16)
                    - host_outputs[answered].astype(np.int16)
                )
            )
        ),
    }


def confusion_matrix(predicted: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows: true class; columns: predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def latency_summary(seconds: list[float]) -> dict:
    """Median, p90 and p99 (and mean, min, max) in milliseconds."""
    if not seconds:
        return {"samples": 0}
    values = np.asarray(seconds, dtype=np.float64) * 1000.0
    return {
        "samples": len(values),
        "median_ms": float(np.median(values)),
        "p90_ms": float(np.percentile(values, 90)),
        "p99_ms": float(np.percentile(values, 99)),
        "mean_ms": float(np.mean(values)),
        "min_ms": float(np.min(values)),
        "max_ms": float(np.max(values)),
    }
