"""``tinykd search`` (and ``train-and-flash --search``): the most accurate distilled student
that fits a board's limits; the search itself lives in :mod:`tinykd.search`."""

from __future__ import annotations

import os
from pathlib import Path
from shutil import which

from tinykd.errors import TinyKDError


def search_limits(
    board_name: str,
    *,
    max_latency_ms: float | None = None,
    max_arena: str | None = None,
    max_flash: str | None = None,
    budget_minutes: float = 60.0,
    tflm_dir: str | None = None,
):
    """The board and the caps, checked before any work (a typo fails at once). A TFLM tree
    (``tflm_dir``, else ``$TFLM_DIR``) turns on instruction counts in QEMU; the tree and the
    tools are checked here too."""
    from tinykd.boards import load_board
    from tinykd.firmware.tflm_library import TFLM_DIR_ENV
    from tinykd.search.cost import SearchLimits, parse_size

    board = load_board(board_name)
    tflm_dir = tflm_dir or os.environ.get(TFLM_DIR_ENV) or None
    if tflm_dir is not None:
        check_qemu_tools(tflm_dir)
    if max_latency_ms is not None and max_latency_ms <= 0:
        raise TinyKDError(f"--max-latency-ms must be positive, not {max_latency_ms:g}.")
    if budget_minutes <= 0:
        raise TinyKDError(f"--budget-minutes must be positive, not {budget_minutes:g}.")
    return SearchLimits(
        board=board,
        max_latency_ms=max_latency_ms,
        max_arena_bytes=parse_size(max_arena, "--max-arena") if max_arena else None,
        max_flash_bytes=parse_size(max_flash, "--max-flash") if max_flash else None,
        tflm_dir=tflm_dir,
    )


def check_qemu_tools(tflm_dir: str) -> None:
    """The tree is a TFLM tree and QEMU and the Arm compiler are installed (one message)."""
    from tinykd.firmware.cross import DEBIAN_PACKAGES
    from tinykd.firmware.tflm_library import find_tflm_tree
    from tinykd.measure.devices.qemu import QEMU_PACKAGE

    find_tflm_tree(tflm_dir)
    missing = [tool for tool in ("qemu-system-arm", "arm-none-eabi-gcc") if not which(tool)]
    if missing:
        raise TinyKDError(
            f"A TFLM tree was given ({tflm_dir}), so the search counts each candidate's "
            f"instructions in QEMU, but {' and '.join(missing)} is not installed. On "
            f"Debian/Ubuntu: apt-get install --no-install-recommends {QEMU_PACKAGE} "
            f"{DEBIAN_PACKAGES}; or unset TFLM_DIR (and drop --tflm-dir) for the board's latency estimate."
        )


def search(config_path: str | None, overrides: list[str], limits, budget_minutes: float) -> int:
    """``tinykd search``: search, print the front, write the search folder."""
    from tinykd.config import load_config

    search_for_flash(load_config(config_path, overrides), limits, budget_minutes)
    return 0


def search_for_flash(config, limits, budget_minutes: float, progress=None):
    """Search, print the front, and return (data, [chosen row], its run directory) — what
    ``train-and-flash`` takes from ``tinykd run``'s pipeline."""
    from tinykd.search.report import front_markdown
    from tinykd.search.run import STUDENT_DIR, run_search

    state, data, row = run_search(config, limits, budget_minutes, progress)
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
