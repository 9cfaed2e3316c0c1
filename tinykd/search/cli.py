"""The ``tinykd search`` subcommand (hooked into ``tinykd/cli.py`` via ``COMMAND_MODULES``)."""

from __future__ import annotations

from pathlib import Path


def add_parsers(sub) -> None:
    search = sub.add_parser(
        "search",
        help="the most accurate distilled student that fits a board (exact int8 cost, "
        "successive halving, Pareto front)",
    )
    search.add_argument("--config", help="run configuration (TOML; [search] is optional)")
    search.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key"
    )
    search.add_argument("--dataset", help="overrides data.dataset")
    search.add_argument("--out", help="search folder (overrides output.dir)")
    search.add_argument("--board", required=True, help="board profile, e.g. nano33ble")
    add_limit_arguments(search)
    search.set_defaults(handler=command_search)


def add_limit_arguments(parser) -> None:
    """The search's budgets (``tinykd search`` and ``train-and-flash --search``)."""
    parser.add_argument("--max-latency-ms", type=float, help="estimated latency cap")
    parser.add_argument("--max-arena", help="tensor arena cap, e.g. 64KB")
    parser.add_argument("--max-flash", help="flash cap (model + TFLM + core), e.g. 128KB")
    parser.add_argument(
        "--budget-minutes",
        type=float,
        default=60.0,
        help="wall-clock budget of this invocation, costing and teacher included (default 60); a rerun resumes with a fresh budget",
    )


def limits_from_args(args):
    from tinykd.boards import load_board
    from tinykd.errors import TinyKDError
    from tinykd.search.cost import SearchLimits, parse_size

    if args.max_latency_ms is not None and args.max_latency_ms <= 0:
        raise TinyKDError(f"--max-latency-ms must be positive, not {args.max_latency_ms:g}.")
    if args.budget_minutes <= 0:
        raise TinyKDError(f"--budget-minutes must be positive, not {args.budget_minutes:g}.")
    return SearchLimits(
        board=load_board(args.board),
        max_latency_ms=args.max_latency_ms,
        max_arena_bytes=parse_size(args.max_arena, "--max-arena") if args.max_arena else None,
        max_flash_bytes=parse_size(args.max_flash, "--max-flash") if args.max_flash else None,
    )


def command_search(args) -> int:
    from tinykd.config import load_config, toml_string

    limits_from_args(args)  # a typo in the board or a limit fails before any work
    overrides = list(args.set)
    if args.dataset:
        overrides.append(f"data.dataset={toml_string(args.dataset)}")
    if args.out:
        overrides.append(f"output.dir={toml_string(args.out)}")
    config = load_config(args.config, overrides)
    search_for_flash(config, args)
    return 0


def search_for_flash(config, args, progress=None):
    """Search, print the front, and return (data, [chosen row], its run directory) — what
    ``train-and-flash`` takes from ``tinykd run``'s pipeline."""
    from tinykd.search.report import front_markdown
    from tinykd.search.run import STUDENT_DIR, run_search

    state, data, row = run_search(config, limits_from_args(args), args.budget_minutes, progress)
    out_dir = Path(config.output.dir)
    print()
    print(front_markdown(state))
    for note in state.notes:
        print(f"note: {note}")
    print(
        f"\nChosen: {state.chosen['candidate']} (int8 test accuracy {row.int8_accuracy:.2%}); "
        f"search took {state.seconds / 60:.1f} min."
    )
    print(
        f"Wrote {out_dir}/ (front.md, front.csv, front.png, candidates.json, search.json, "
        f"{STUDENT_DIR}/ — a run directory: `tinykd bench --run {out_dir / STUDENT_DIR}`)"
    )
    return data, [row], out_dir / STUDENT_DIR
