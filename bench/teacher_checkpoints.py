"""Does a checkpoint from the middle of the teacher's training teach better than the end?

    python bench/teacher_checkpoints.py --checkpoints 10 15 20
Wang et al. (NeurIPS 2022, "Efficient knowledge distillation from model checkpoints") report
that an intermediate checkpoint, less accurate than the converged teacher, can distil
better. This trains the demo's teacher recipe once, on its full schedule, keeps its weights
after each listed epoch, and distils the demo student from each with the demo's setting
(function matching on the same replayed views), next to a scratch student with the same
seed, views and budget. It prints float accuracy on the *validation* split only (6,000
held-out training images): a choice made here never looks at the test set.
"""

from __future__ import annotations

from common import bench_arguments, bench_config, float_accuracy
from kd_sweep import SETTINGS, print_table, validation_accuracy

from tinykd._keras import keras
from tinykd.pipeline import prepare_data, teacher_recipe
from tinykd.progress import Progress
from tinykd.training import ModelSpec, train


def keep_weights_after(epochs: list[int], model, kept: dict):
    """A Keras callback storing ``model``'s weights in ``kept[epoch]`` after each listed epoch."""

    class KeepWeights(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 in epochs:
                kept[epoch + 1] = model.get_weights()

    return KeepWeights()


def main() -> None:
    parser = bench_arguments(__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=int, nargs="+", default=[10, 15, 20])
    parser.add_argument("--no-scratch", action="store_true", help="skip the scratch baseline")
    parser.set_defaults(epochs=0, seeds=1)  # 0: the demo's student epochs
    args = parser.parse_args()
    config = bench_config(args)
    last = config.teacher.epochs
    if not all(0 < epoch <= last for epoch in args.checkpoints):
        parser.error(f"--checkpoints must lie in 1 … {last} (the teacher's epochs)")
    progress = Progress()
    data = prepare_data(config, progress)
    spec = ModelSpec(config.teacher.model, config.teacher.width)
    recipe = teacher_recipe(config)
    teacher, kept = spec.build(data, recipe.seed), {}
    train(
        teacher,
        data,
        recipe,
        callbacks=[
            progress.epoch_callback("teacher"),
            keep_weights_after(args.checkpoints, teacher, kept),
        ],
    )
    checkpoints = {}  # epoch → (teacher with that epoch's weights, its validation accuracy)
    for epoch in sorted(kept):
        checkpoint = spec.build(data, recipe.seed)
        checkpoint.set_weights(kept[epoch])
        checkpoints[epoch] = (checkpoint, float_accuracy(checkpoint, data.x_val, data.y_val))
    rows = []
    for seed in range(args.seeds):
        if not args.no_scratch:
            accuracy = validation_accuracy(config, data, seed, progress=progress)
            rows.append(f"| {seed} | – | – | scratch | {100 * accuracy:.2f} |")
            progress.say(rows[-1])
        for epoch, (checkpoint, teacher_accuracy) in checkpoints.items():
            # SETTINGS[0] is the demo's: function matching.
            accuracy = validation_accuracy(config, data, seed, checkpoint, SETTINGS[0], progress)
            rows.append(
                f"| {seed} | {epoch}/{last} | {100 * teacher_accuracy:.2f} | {SETTINGS[0][0]} "
                f"| {100 * accuracy:.2f} |"
            )
            progress.say(rows[-1])
    columns = ["seed", "teacher epoch", "teacher validation %", "student", "student validation %"]
    print_table(config, columns, rows)


if __name__ == "__main__":
    main()
