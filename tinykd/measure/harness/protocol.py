"""Host side of the firmware's serial protocol: command bytes out, reply lines in.

Transport-free (bytes and strings only) so a real port, a socket, a pty or the host
library all use the same encoding. The firmware side is ``firmware/core/tkd_core.c``;
``firmware/README.md`` lists every command and reply.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import numpy as np

MLPERF_CMD_SIZE = 80  # the MLPerf Tiny reference command buffer; tkd-info reports ours
READY = "m-ready"
RESULT_DECIMALS = 6  # m-results digits for class probabilities (3 for a single score)
FLOAT32_EPSILON = 2.0**-24  # the relative rounding error of one float32 operation
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


def reported_results(
    output: np.ndarray, scale: float, zero_point: int, output_is_probabilities: bool
) -> np.ndarray:
    """What ``m-results`` reports for these int8 outputs, computed exactly (float64).

    Several classes: class probabilities (the model's own softmax output dequantized, or
    the softmax of the dequantized outputs); one output: its dequantized value.
    """
    values = (np.asarray(output, dtype=np.float64) - zero_point) * np.float64(np.float32(scale))
    if values.shape[-1] == 1 or output_is_probabilities:
        return values
    exponentials = np.exp(values - values.max(axis=-1, keepdims=True))
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


def results_tolerance(expected: np.ndarray, scale: float, output_is_probabilities: bool):
    """How far the firmware's printed ``m-results`` may be from ``reported_results``.

    Printing rounds to half a unit of the last decimal. The firmware computes in float32:
    each operation is off by at most 2^-24 relative. A softmax term e^y, y = scale * d
    with d an int8 difference (|y| <= 255 * scale), inherits |y| * 2^-24 from rounding y;
    the range reduction and the degree-7 polynomial add about 6 roundings, the sum of K
    terms K - 1, the division and the printing's scaling one each.
    """
    classes = expected.shape[-1]
    decimals = 3 if classes == 1 else RESULT_DECIMALS
    printing = 0.5 * 10.0**-decimals
    if classes == 1 or output_is_probabilities:
        roundings = 2.0
    else:
        roundings = 255.0 * float(np.float32(scale)) + classes + 8.0
    return printing + np.abs(expected) * roundings * FLOAT32_EPSILON


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

    def bracketed(self, prefix: str) -> str | None:
        """The text inside ``<prefix>[…]`` of the first line that has it."""
        for line in self.lines:
            if line.startswith(prefix + "[") and line.endswith("]"):
                return line[len(prefix) + 1 : -1]
        return None

    def results(self) -> list[float]:
        """The floats of ``m-results-[…]`` (class probabilities, see ``reported_results``)."""
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
