"""Host side of the firmware's serial protocol: command bytes out, reply lines in.

Transport-free (bytes and strings only) so a real port, a socket, a pty or the host
library all use the same encoding. The firmware side is ``firmware/core/tkd_core.c``;
``firmware/README.md`` lists every command and reply.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

MLPERF_CMD_SIZE = 80  # the MLPerf Tiny reference command buffer; tkd-info reports ours
READY = "m-ready"
_KEY_VALUE = re.compile(r"^m-tkd-([a-z-]+)-\[(.*)\]$")


def db_commands(data: bytes, cmd_size: int = MLPERF_CMD_SIZE) -> list[bytes]:
    """MLPerf Tiny input loading: ``db load N%`` then ``db HH…%`` chunks that fit ``cmd_size``.

    Send one command at a time and wait for its ``m-ready``, as the MLPerf runner does.
    """
    per_command = (cmd_size - len("db ")) // 2
    commands = [f"db load {len(data)}%".encode()]
    for start in range(0, len(data), per_command):
        commands.append(b"db " + data[start : start + per_command].hex().encode() + b"%")
    return commands


def bulk_command(data: bytes) -> bytes:
    """``tkd-bulk N CRC%``: send it, wait for ``m-tkd-bulk-ready-[N]``, then send ``data`` raw."""
    return f"tkd-bulk {len(data)} {zlib.crc32(data):08x}%".encode()


def infer_command(runs: int = 1, warmup: int = 0) -> bytes:
    """``infer N W%`` (always with W: the MLPerf default without it is 10 warmup runs)."""
    return f"infer {runs} {warmup}%".encode()


@dataclass(frozen=True)
class Reply:
    """The lines of one command's reply, up to and without ``m-ready``."""

    lines: tuple[str, ...]

    @property
    def errors(self) -> list[str]:
        return [line for line in self.lines if line.startswith("e-")]

    def values(self) -> dict[str, str]:
        """``m-tkd-<key>-[<value>]`` lines as a dict (tkd-info, tkd-ticks)."""
        found = {}
        for line in self.lines:
            match = _KEY_VALUE.match(line)
            if match:
                found[match.group(1)] = match.group(2)
        return found

    def results(self) -> list[float]:
        """The floats of ``m-results-[…]``."""
        for line in self.lines:
            if line.startswith("m-results-[") and line.endswith("]"):
                return [float(v) for v in line[len("m-results-[") : -1].split(",")]
        raise ValueError(f"no m-results line in {self.lines}")

    def int8_output(self) -> list[int]:
        """The exact int8 outputs of ``tkd-output``."""
        hex_text = self.values()["output"]
        return [b - 256 if b > 127 else b for b in bytes.fromhex(hex_text)]

    def laps_us(self) -> list[int]:
        return [
            int(line[len("m-lap-us-") :]) for line in self.lines if line.startswith("m-lap-us-")
        ]


def split_replies(text: str) -> list[Reply]:
    """Cut a captured output into replies at each ``m-ready`` (a trailing partial one is dropped)."""
    replies, current = [], []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line == READY:
            replies.append(Reply(tuple(current)))
            current = []
        elif line:
            current.append(line)
    return replies
