"""Where the firmware sources and the build cache are."""

from __future__ import annotations

import os
from pathlib import Path

from tinykd.errors import TinyKDError

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


def firmware_dir() -> Path:
    """The ``firmware/`` source tree (``TINYKD_FIRMWARE_DIR`` overrides it)."""
    path = Path(os.environ.get("TINYKD_FIRMWARE_DIR") or REPOSITORY_ROOT / "firmware")
    if not (path / "core" / "tkd_core.c").is_file():
        raise TinyKDError(
            f"Firmware sources not found in {path}. Run tinykd from a checkout of the "
            "repository or set TINYKD_FIRMWARE_DIR to its firmware/ folder."
        )
    return path
