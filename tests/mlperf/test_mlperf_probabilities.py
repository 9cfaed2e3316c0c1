"""A model that ends in SOFTMAX: the firmware reports the model's own probabilities."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np

from tinykd.data.sources import load_digits
from tinykd.export import ArenaPlan, Int8Artifact, describe_tflite
from tinykd.export.c_sources import model_settings_header
from tinykd.firmware.host_core import HostCore
from tinykd.measure.devices.emulator import TflmHostRuntime
from tinykd.measure.harness.protocol import db_commands, infer_command, split_replies

ARENA = 16384


def softmax_model_tflite() -> bytes:
    from tinykd._keras import keras
    from tinykd.compress import convert_int8

    data = load_digits()
    inputs = keras.Input(data.x_train.shape[1:])
    logits = keras.layers.Dense(10, kernel_initializer=keras.initializers.RandomNormal(seed=0))(
        keras.layers.Flatten()(inputs)
    )
    model = keras.Model(inputs, keras.layers.Softmax()(logits))
    return convert_int8(model, calibration_images=data.x_train, num_calibration_samples=20)


def test_softmax_output_is_reported_dequantized(tmp_path):
    tflite = softmax_model_tflite()
    info = describe_tflite(tflite)
    assert info.output_is_softmax
    assert (info.output.scale, info.output.zero_point) == (1 / 256, -128)  # TFLite's int8 softmax
    artifact = Int8Artifact(tflite, name="softmax", arena=ArenaPlan(ARENA - 512, 512))
    settings = model_settings_header(artifact)
    assert "#define TKD_OUTPUT_IS_PROBABILITIES 1\n" in settings
    (tmp_path / "model_settings.h").write_text(settings)
    core = HostCore(tmp_path / "model_settings.h", TflmHostRuntime(artifact, ARENA, arena_used=0))
    core.boot()
    sample = np.clip(np.arange(64) * 4 - 128, -128, 127).astype(np.int8).tobytes()
    output = b"".join(core.feed(command) for command in db_commands(sample))
    output = core.feed(infer_command(1, 0) + b"tkd-output%")
    infer, raw = split_replies(output.decode())[:2]
    int8 = np.array(raw.int8_output())
    # (q + 128) / 256 is exact in binary and in decimal: six decimals, half away from zero
    expected = [
        float((Decimal(int(q) + 128) / 256).quantize(Decimal("1e-6"), rounding=ROUND_HALF_UP))
        for q in int8
    ]
    assert infer.results() == expected
    assert abs(sum(infer.results()) - 1.0) <= 10 / 256  # int8 softmax: each value within 1/256
