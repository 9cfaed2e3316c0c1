"""Self-distillation, online distillation, deep supervision and NetAug vs plain training.

Fashion-MNIST, no teacher, the same recipe and budget (epochs, batch, learning rate,
schedule) for every model, several seeds, int8 accuracy in the TFLM host interpreter:

1. NetAug vs plain training at three student sizes (plain_cnn at widths 0.25, 1.0, 2.75:
   about 2 k, 9 k and 31 k parameters) — the paper says NetAug helps the smallest most;
2. born-again (3 generations), deep mutual learning (2 and 3 peers) and deep supervision
   against the scratch student of the middle size.

Training time is reported relative to plain training of the same student and seed.

python bench/strategies_vs_scratch.py                   # the README table (≈40 min, 2 cores)
python bench/strategies_vs_scratch.py --quick           # smoke run on digits
"""

from __future__ import annotations

import statistics

from common import bench_arguments, bench_config, mean_std, np, time

from tinykd.compress import convert_int8
from tinykd.measure import TflmModel
from tinykd.models import ensemble_model, profile_model
from tinykd.pipeline import prepare_data
from tinykd.progress import Progress
from tinykd.recipe import Recipe
from tinykd.strategies import build_strategy
from tinykd.training import ModelSpec, float_accuracy, train

SCRATCH = "scratch"


def int8_logits(model, data) -> np.ndarray:
    """Dequantized int8 outputs of the model on the test set, computed by TFLM."""
    tflm = TflmModel(convert_int8(model, calibration_images=data.x_train))
    return tflm.dequantize_outputs(tflm.predict_int8(data.x_test))


class Results:
    """Per-row lists over seeds: int8 and float accuracy, training seconds."""

    def __init__(self):
        self.int8: dict[str, list[float]] = {}
        self.float: dict[str, list[float]] = {}
        self.seconds: dict[str, list[float]] = {}
        self.params: dict[str, int] = {}

    def add(self, row: str, data, model=None, logits=None, seconds=None, float_model=None):
        """One measurement; ``logits`` (int8 outputs) for ensembles, else from ``model``."""
        if logits is None:
            logits = int8_logits(model, data)
            self.params[row] = profile_model(model).params
        accuracy = float(np.mean(np.argmax(logits, axis=1) == data.y_test))
        self.int8.setdefault(row, []).append(accuracy)
        float_model = float_model or model
        if float_model is not None:
            self.float.setdefault(row, []).append(
                float_accuracy(float_model, data.x_test, data.y_test)
            )
        if seconds is not None:
            self.seconds.setdefault(row, []).append(seconds)
        shown = f"int8 TFLM {accuracy:.4f}" + (f" ({seconds:.0f} s)" if seconds else "")
        print(f"    {row:38s} {shown}", flush=True)
        return logits

    def alias(self, row: str, source: str) -> None:
        """``row`` repeats the latest measurement of ``source`` (the same trained model)."""
        for table in (self.int8, self.float, self.seconds):
            if source in table:
                table.setdefault(row, []).append(table[source][-1])
        self.params[row] = self.params[source]

    def relative_time(self, row: str, baseline: str) -> str:
        if row not in self.seconds:
            return "—"
        ratios = [s / b for s, b in zip(self.seconds[row], self.seconds[baseline])]
        return f"{statistics.mean(ratios):.2f}×"

    def gain(self, row: str, baseline: str) -> str:
        gains = [100 * (a - b) for a, b in zip(self.int8[row], self.int8[baseline])]
        return ", ".join(f"{g:+.2f}" for g in gains)

    def float_text(self, row: str) -> str:
        return mean_std(self.float[row]) if row in self.float else "—"


def size_rows(width: float) -> tuple[str, str]:
    return f"plain ×{width:g}", f"netaug ×{width:g}"


def run_seed(seed, args, config, data, results: Results) -> None:
    model_name = config.student.model
    recipe = Recipe(
        epochs=config.student.epochs,
        batch_size=config.student.batch_size,
        learning_rate=config.student.learning_rate,
        seed=seed,
    )
    # The same optimizer as plain training (NetAug's own default is the official SGD recipe).
    netaug = build_strategy("netaug", optimizer="adam")
    for width in args.widths:
        plain_row, netaug_row = size_rows(width)
        student = ModelSpec(model_name, width)
        model = student.build(data, seed)
        run = train(model, data, recipe)
        results.add(plain_row, data, model, seconds=run.seconds)
        if width == args.middle:
            results.alias(SCRATCH, plain_row)
        if "netaug" in args.only:
            trained = netaug.train(student, data, recipe)
            results.add(netaug_row, data, trained.model, seconds=trained.seconds)
    student = ModelSpec(model_name, args.middle)
    if "born_again" in args.only:
        trained = build_strategy("born_again", generations=3).train(student, data, recipe)
        generation_logits = [
            results.add(f"born-again {label}", data, model)
            for label, model in trained.members.items()
        ]
        results.seconds.setdefault("born-again generation 3", []).append(trained.seconds)
        results.add(
            "born-again ensemble of 3",
            data,
            logits=np.mean(generation_logits, axis=0),
            float_model=trained.ensemble,
        )
    for peers in (2, 3) if "mutual" in args.only else ():
        trained = build_strategy("mutual", peers=peers).train(student, data, recipe)
        peer_logits = [
            results.add(f"mutual {peers} peers: peer {index + 1}", data, model)
            for index, model in enumerate(trained.members.values())
        ]
        results.seconds.setdefault(f"mutual {peers} peers: peer 1", []).append(trained.seconds)
        results.add(
            f"mutual {peers} peers: ensemble",
            data,
            logits=np.mean(peer_logits, axis=0),
            float_model=ensemble_model(list(trained.members.values())),
        )
    if "deep_supervision" in args.only:
        trained = build_strategy("deep_supervision").train(student, data, recipe)
        results.add("deep supervision", data, trained.model, seconds=trained.seconds)


def print_tables(args, config, data, results: Results, wall_seconds: float) -> None:
    print()
    print("# Strategies vs plain training (no teacher)\n")
    print(
        f"{data.name} ({data.source}): {len(data.x_train)} train / {len(data.x_test)} test; "
        f"{config.student.model}, {config.student.epochs} epochs, batch {config.student.batch_size}, "
        f"Adam {config.student.learning_rate} cosine, {args.seeds} seed(s); int8 accuracy in the "
        f"TFLM host interpreter (mean ± std over seeds); bench wall time {wall_seconds / 60:.0f} min.\n"
    )
    if "netaug" in args.only:
        print("## NetAug vs plain training, by student size\n")
        print(
            "| student | params | plain int8 % | NetAug int8 % | NetAug − plain per seed (points) | NetAug time |"
        )
        print("|---|---|---|---|---|---|")
        for width in args.widths:
            plain_row, netaug_row = size_rows(width)
            print(
                f"| {config.student.model} ×{width:g} | {results.params[plain_row]:,} | "
                f"{mean_std(results.int8[plain_row])} | {mean_std(results.int8[netaug_row])} | "
                f"{results.gain(netaug_row, plain_row)} | {results.relative_time(netaug_row, plain_row)} |"
            )
        print()
    if SCRATCH not in results.int8:
        return
    print(
        f"## Self-distillation, mutual learning and deep supervision ({config.student.model} "
        f"×{args.middle:g}, {results.params[SCRATCH]:,} params)\n"
    )
    print("| method | int8 % (TFLM) | float % | int8 − scratch per seed (points) | training time |")
    print("|---|---|---|---|---|")
    for row in results.int8:
        if row.startswith(("plain ", "netaug ")):
            continue
        gain = "—" if row == SCRATCH else results.gain(row, SCRATCH)
        print(
            f"| {row} | {mean_std(results.int8[row])} | {results.float_text(row)} | {gain} | "
            f"{results.relative_time(row, SCRATCH)} |"
        )
    print(
        "\nTraining time: the whole strategy (all generations / all peers together / NetAug "
        "with BN re-estimation) relative to training the plain student once, same seed. "
        "Ensembles run every member on the device (2–3× the inference cost)."
    )


def main() -> None:
    parser = bench_arguments(__doc__.splitlines()[0])
    parser.add_argument(
        "--widths", default="0.25,1.0,2.75", help="student widths for NetAug vs plain"
    )
    parser.add_argument("--middle", type=float, default=1.0, help="width for the other methods")
    parser.add_argument("--test-limit", type=int, default=5000, help="0 = the whole test set")
    parser.add_argument(
        "--only",
        default="netaug,born_again,mutual,deep_supervision",
        help="comma-separated subset of the experiments",
    )
    parser.set_defaults(train_limit=8000, epochs=6)
    args = parser.parse_args()
    args.widths = [float(w) for w in args.widths.split(",")]
    args.only = set(args.only.split(","))
    if args.only - {"netaug"} and args.middle not in args.widths:
        args.widths.append(args.middle)  # its plain run is the scratch baseline
    # No validation split: nothing here selects on it, and it would cost an evaluation per epoch.
    config = bench_config(
        args, **{"data.test_limit": args.test_limit, "data.validation_fraction": 0.0}
    )
    started = time.monotonic()
    data = prepare_data(config, Progress())
    results = Results()
    for seed in range(args.seeds):
        print(f"seed {seed}", flush=True)
        run_seed(seed, args, config, data, results)
    print_tables(args, config, data, results, time.monotonic() - started)


if __name__ == "__main__":
    main()
