"""The TFLM arena: recording allocator's total vs the true minimum, and the firmware's arena.

For each model: TFLM's "Arena allocation total", the smallest arena the search finds
(tinykd.export.arena), whether that size and one byte less allocate and invoke (each
tried in a fresh subprocess), and the arena the firmware compiles in under the arena
policy (tinykd.export.artifact). Without arguments: the default student and teacher
(tinykd.config.RunConfig), untrained (the arena depends on tensor shapes, not weights),
for 28x28x1 inputs and 10 classes, converted by tinykd's int8 converter. Takes ~1 min.

    python bench/arena_minimum.py [model.tflite ...]    # e.g. runs/demo/distilled.tflite
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tinykd.export import Int8Artifact  # noqa: E402
from tinykd.export.arena import arena_allocates, reported_arena  # noqa: E402


def default_models() -> dict[str, bytes]:
    from tinykd.compress import convert_int8
    from tinykd.config import RunConfig
    from tinykd.models import build_model

    defaults = RunConfig()
    calibration = np.random.default_rng(0).random((32, 28, 28, 1), dtype=np.float32)
    models = {}
    for role in ("student", "teacher"):
        name = getattr(defaults, role).model
        model = build_model(name, (28, 28, 1), 10, seed=0)
        models[f"{name} ({role}, untrained)"] = convert_int8(
            model, calibration_images=calibration, num_calibration_samples=16
        )
    return models


def main() -> None:
    paths = sys.argv[1:]
    models = {path: Path(path).read_bytes() for path in paths} if paths else default_models()
    print(
        "| model | .tflite bytes | TFLM reported total | true minimum (host, 64-bit) "
        "| minimum works | minimum - 1 fails | firmware arena (policy) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, tflite in models.items():
        artifact = Int8Artifact(tflite, name=name)
        minimum = artifact.arena.minimum_bytes
        print(
            f"| {name} | {len(tflite):,} | {reported_arena(tflite):,} | {minimum:,} "
            f"| {arena_allocates(tflite, minimum)} | {not arena_allocates(tflite, minimum - 1)} "
            f"| {artifact.arena.size_bytes:,} (+ {artifact.arena.margin_bytes:,} margin) |",
            flush=True,
        )


if __name__ == "__main__":
    main()
