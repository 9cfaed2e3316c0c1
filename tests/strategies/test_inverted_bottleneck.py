"""The inverted-bottleneck students (NetAug's model family) convert to full int8 and run in TFLM."""

from __future__ import annotations

import numpy as np
import pytest

from tinykd.compress import convert_int8
from tinykd.export.tflite_model import describe_tflite
from tinykd.measure import TflmModel
from tinykd.models import build_model
from tinykd.models.builders import mbv2_tiny

TFLM_OPERATORS = {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED"}


def test_inverted_bottleneck_blocks_expand_project_and_add_where_shapes_match():
    model = build_model("mbv2_tiny", (28, 28, 1), 10, width=0.5, seed=0)
    layer = model.get_layer
    # stem 4 → stage 1 (8 channels): expand 3 × 4 = 12, project to 8, no residual (stride 2);
    # stage 2 (12 channels): block 1 expands 8 → 24, block 2 expands 12 → 36 and adds.
    assert layer("stage1_block1_expand").filters == 12
    assert layer("stage1_block1_project").filters == 8
    assert layer("stage2_block2_expand").filters == 36
    assert [type(x).__name__ for x in model.layers].count("Add") == 1
    assert layer("stage2_block2_add").output_shape == (None, 4, 4, 12)
    wider = mbv2_tiny((28, 28, 1), 10, width=0.5, expand_ratio=6.0)
    assert wider.get_layer("stage2_block2_expand").filters == 72
    assert [type(x).__name__ for x in build_model("mbv2_micro", (8, 8, 1), 10).layers].count(
        "Add"
    ) == 1


@pytest.mark.parametrize("model_name", ["mbv2_tiny", "mbv2_micro"])
def test_inverted_bottleneck_student_is_full_int8_with_tflm_operators_only(
    model_name, digits_split, randomize_weights
):
    model = randomize_weights(build_model(model_name, digits_split.input_shape, 10, 0.5, seed=0))
    x = digits_split.x_test[:100]
    tflite = convert_int8(
        model, calibration_images=digits_split.x_train, num_calibration_samples=100
    )
    info = describe_tflite(tflite)
    assert set(info.operators) == TFLM_OPERATORS
    assert info.float_operators == ()
    tflm = TflmModel(tflite)
    int8_logits = tflm.dequantize_outputs(tflm.predict_int8(x))
    float_logits = model.predict(x, verbose=0)
    agreement = np.mean(np.argmax(int8_logits, axis=1) == np.argmax(float_logits, axis=1))
    assert agreement > 0.9, agreement
