"""TFLM vs LiteRT: the comparison figures by hand, and a real int8 model within ±1 LSB."""

from __future__ import annotations

import numpy as np
import pytest

from tinykd_lab.parity import compare_outputs, parity_report


def test_comparison_figures_by_hand():
    tflm = np.array([[10, 9, -5], [0, 3, 2], [7, 7, 1]], dtype=np.int8)
    litert = np.array([[10, 9, -4], [0, 2, 3], [7, 7, 1]], dtype=np.int8)
    report = compare_outputs(tflm, litert, labels=np.array([0, 1, 1]))
    assert report.samples == 3 and report.outputs == 9
    assert report.differing_outputs == 3
    assert report.max_lsb_difference == 1 and report.within_expected
    assert report.disagreeing_samples == (1,)  # argmax 1 vs 2
    assert report.class_agreement == pytest.approx(2 / 3)
    # Ties go to the first index in both runtimes (sample 2: class 0).
    assert report.tflm_accuracy == pytest.approx(2 / 3)
    assert report.litert_accuracy == pytest.approx(1 / 3)
    assert "classes agree on 66.67% (1 differ: samples 1)" in report.summary()


def test_int8_extremes_do_not_wrap():
    report = compare_outputs(
        np.array([[127, -128]], dtype=np.int8), np.array([[-128, 127]], dtype=np.int8)
    )
    assert report.max_lsb_difference == 255 and not report.within_expected
    assert "more than the known ±1 LSB" in report.summary()


def test_tflm_and_litert_agree_on_a_trained_model(tiny_int8_model, digits):
    _, tflite = tiny_int8_model
    report = parity_report(tflite, digits.x_test, digits.y_test)
    assert report.samples == len(digits.x_test)
    assert report.max_lsb_difference <= 1
    assert report.class_agreement >= 0.99
    assert abs(report.tflm_accuracy - report.litert_accuracy) <= 0.01
