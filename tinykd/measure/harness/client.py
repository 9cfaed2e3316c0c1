"""The host side of the device protocol: MLPerf Tiny's DUT commands plus tinykd's ``tkd-``.

Every command ends in ``%``; every reply is ``m-…`` lines ending in ``m-ready``; errors
are ``e-[…]`` lines. ``DeviceClient`` sends one command at a time and reads its reply
with a deadline. Anything unexpected becomes one of three exceptions that the benchmark
runner recovers from: ``DeviceReset`` (``m-init-done`` appeared: the device restarted),
``ProtocolError`` (a reply that is not what the protocol promises: lost or corrupted
bytes, lost synchronisation) and ``DeviceError`` (a well-formed ``e-[…]`` answer, such as
a checksum mismatch). ``resync`` brings host and device back in step with a probe whose
answer is unique, so a late reply to an earlier command is never taken for a new one.

The handshake fails closed: each of its replies (name, profile, ``tkd-info``, ``help``) is
asked for until two replies agree byte for byte, and ``tkd-info`` must be complete and well
formed. One garbled byte can therefore neither switch the model-hash check off nor hide
a capability (the CRC-checked binary transport, the raw-output cross-check).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tinykd.measure.harness.link import Link, LinkTimeout
from tinykd.measure.harness.protocol import (
    MLPERF_CMD_SIZE,
    READY,
    Reply,
    bulk_command,
    db_commands,
    infer_command,
    reported_results,
    results_tolerance,
)

INIT_DONE = "m-init-done"
AGREEMENT_ATTEMPTS = 6  # replies asked for, at most, until two of them agree
# Keys every tinykd firmware's tkd-info carries, and the form of each value.
TKD_INFO_REQUIRED = {
    "protocol": r"[0-9]+",
    "hash": r"[0-9a-f]{16}",
    "input-bytes": r"[0-9]+",
    "classes": r"[0-9]+",
    "cmd-size": r"[0-9]+",
    "runtime-status": r"[0-9]+",
}
_TKD_LINE = re.compile(r"m-tkd-[a-z-]+-\[[\x20-\x5c\x5e-\x7e]*\]")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")


class DeviceReset(Exception):
    """The device printed ``m-init-done`` again: it restarted and lost its loaded input."""


class ProtocolError(Exception):
    """A reply that breaks the protocol (missing, garbled or out of step)."""


class DeviceError(Exception):
    """The device answered with an ``e-[…]`` line."""


@dataclass(frozen=True)
class Timeouts:
    """Seconds to wait; the wire time of the bytes involved is always added on top."""

    command: float = 2.0  # one ordinary reply
    infer: float = 20.0  # one inference and its results
    device_bulk: float = 1.0  # the firmware abandons a stalled tkd-bulk after this long
    quiet: float = 0.1  # silence that ends a drain during resynchronisation


@dataclass
class DeviceInfo:
    """What the device says about itself in the handshake."""

    name: str
    profile: str = ""
    model: str = ""
    tkd: dict[str, str] = field(default_factory=dict)  # tkd-info fields, e.g. "hash"
    commands: frozenset[str] = frozenset()  # first words of the help text

    def number(self, key: str) -> int | None:
        value = self.tkd.get(key)
        return int(value) if value is not None and value.isdigit() else None

    @property
    def model_hash(self) -> str | None:
        return self.tkd.get("hash")

    @property
    def has_bulk(self) -> bool:
        return "tkd-bulk" in self.commands

    @property
    def command_size(self) -> int:
        return self.number("cmd-size") or MLPERF_CMD_SIZE

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "profile": self.profile,
            "model": self.model,
            "tkd": dict(self.tkd),
            "commands": sorted(self.commands),
        }


@dataclass
class Inference:
    """One inference as the device reported it."""

    output: np.ndarray  # int8 raw outputs (from tkd-output, or re-quantized m-results)
    scores: list[float]  # m-results: class probabilities (see protocol.reported_results)
    ticks: int | None  # tkd-ticks per inference, in the device's tick unit
    lap_us: int | None  # difference of the two m-lap-us lines around the timed run


def _bracketed(lines, prefix: str) -> str | None:
    """The text inside ``<prefix>[…]`` of the first line that has it."""
    for line in lines:
        if line.startswith(prefix + "[") and line.endswith("]"):
            return line[len(prefix) + 1 : -1]
    return None


def _reply(lines: list[str]) -> Reply:
    """The reply without its closing ``m-ready``."""
    return Reply(tuple(lines[:-1] if lines and lines[-1] == READY else lines))


class DeviceClient:
    """Sends commands and reads replies over one ``Link``."""

    def __init__(self, link: Link, timeouts: Timeouts | None = None):
        self.link = link
        self.timeouts = timeouts or Timeouts()
        self._probe_counter = 0
        self._probe_span = 8  # probe sizes 1..span; widened to the input size after handshake

    # ---- reading and writing -----------------------------------------------------
    def _deadline(self, seconds: float, wire_bytes: int) -> float:
        return time.monotonic() + seconds + wire_bytes * self.link.byte_seconds

    def read_reply(self, deadline: float, until: Callable[[str], bool] | None = None) -> list[str]:
        """Lines up to and including the one ``until`` accepts (``m-ready`` by default)."""
        until = until or (lambda line: line == READY)
        lines: list[str] = []
        while True:
            try:
                line = self.link.read_line(deadline)
            except LinkTimeout:
                seen = " | ".join(lines[-3:]) or "nothing"
                raise ProtocolError(f"no complete reply in time (got: {seen})") from None
            if line == INIT_DONE:
                raise DeviceReset("the device printed m-init-done (it restarted)")
            lines.append(line)
            if until(line):
                return lines

    def transact(
        self,
        command: str,
        *,
        timeout: float | None = None,
        reply_bytes: int = 64,
        until: Callable[[str], bool] | None = None,
    ) -> list[str]:
        """Send ``command`` (``%`` included) and return its reply lines."""
        data = command.encode("ascii")
        deadline = self._deadline(timeout or self.timeouts.command, len(data) + reply_bytes)
        self.link.write(data)
        return self.read_reply(deadline, until)

    # ---- synchronisation -------------------------------------------------------
    def _next_probe(self) -> int:
        self._probe_counter += 1
        return 1 + self._probe_counter % self._probe_span

    def resync(self, attempts: int = 5) -> bool:
        """Bring the device back to "waiting for a command" and the reader in step with it.

        ``%`` ends any half-received command; a device stuck in a tkd-bulk transfer ends it
        by its own timeout. Then ``db load K%`` with a K not used recently: its answer
        ``m-[Expecting K bytes]`` can only belong to this probe. Returns True if a restart
        (``m-init-done``) was seen meanwhile.
        """
        restarted = False
        for _ in range(attempts):
            self.link.write(b"%")
            restarted |= self._drain(self.timeouts.device_bulk + 1.0)
            probe = self._next_probe()
            expected = f"m-[Expecting {probe} bytes]"
            deadline = self._deadline(self.timeouts.command, 64)
            self.link.write(f"db load {probe}%".encode("ascii"))
            try:
                while True:
                    lines = self.read_reply(deadline)
                    if len(lines) >= 2 and lines[-2] == expected:
                        return restarted
            except DeviceReset:
                restarted = True
            except ProtocolError:
                pass
        raise ProtocolError(f"could not resynchronise with the device in {attempts} attempts")

    def _drain(self, limit: float) -> bool:
        """Read until an ``m-ready`` is followed by silence (or ``limit``); True on m-init-done."""
        restarted = False
        stop = time.monotonic() + limit
        ready_seen = False
        while time.monotonic() < stop:
            quiet_end = time.monotonic() + self.timeouts.quiet
            try:
                line = self.link.read_line(min(stop, quiet_end) if ready_seen else stop)
            except LinkTimeout:
                break
            restarted |= line == INIT_DONE
            ready_seen = line == READY
        self.link.discard_pending()
        return restarted

    # ---- handshake -------------------------------------------------------------
    def agreed(self, command: str, reply_bytes: int = 64) -> list[str]:
        """The reply to ``command`` once two replies were identical (asked up to 6 times).

        A reply garbled on the way differs from the next clean one, so it is never used;
        a reply that breaks the protocol (no ``m-ready`` in time) costs a resynchronisation.
        Only printable lines count: a dropped line ending leaves a CR inside a line.
        """
        seen: list[tuple[str, ...]] = []
        for _ in range(AGREEMENT_ATTEMPTS):
            try:
                lines = tuple(self.transact(command, reply_bytes=reply_bytes))
            except ProtocolError:
                self.resync()
                continue
            if not all(_PRINTABLE.fullmatch(line) for line in lines):
                continue
            if lines in seen:
                return list(lines)
            seen.append(lines)
        raise ProtocolError(
            f"no two of {AGREEMENT_ATTEMPTS} replies to {command} agreed (a garbling link)"
        )

    def handshake(self) -> DeviceInfo:
        """name%, profile%, tkd-info% and help%: who the device is and what it offers."""
        self.resync()
        name = _bracketed(self.agreed("name%"), "m-name-dut-")
        if name is None:
            raise ProtocolError("the device did not answer name% with m-name-dut-[…]")
        info = DeviceInfo(name=name)
        profile = self.agreed("profile%")
        info.profile = _bracketed(profile, "m-profile-") or ""
        info.model = _bracketed(profile, "m-model-") or ""
        info.tkd = _tkd_info(self.agreed("tkd-info%", reply_bytes=600))
        help_lines = self.agreed("help%", reply_bytes=1200)
        info.commands = frozenset(
            line.split()[0] for line in help_lines if line.strip() and ":" in line
        )
        if info.number("input-bytes"):
            self._probe_span = max(1, min(info.number("input-bytes"), 250))
        return info

    # ---- loading an input --------------------------------------------------------
    def load_binary(self, data: bytes, stream: bool = True) -> None:
        """tkd-bulk: N raw bytes checked by CRC-32 on the device.

        ``stream``: the raw bytes follow the command in the same write instead of after
        ``m-tkd-bulk-ready`` comes back. The core switches to raw mode the moment it reads
        the command's ``%`` and takes bytes as they arrive, so this saves a round trip per
        sample; it needs a receive buffer of a few dozen bytes (every supported board has one).
        """
        announced = f"m-tkd-bulk-ready-[{len(data)}]"
        command = bulk_command(data)
        deadline = self._deadline(self.timeouts.command, len(command) + len(data) + 64)
        self.link.write(command + data if stream else command)
        lines = self.read_reply(
            deadline, until=lambda line: line == READY or line.startswith("m-tkd-bulk-ready-")
        )
        if lines[-1] != announced:
            raise self._unexpected("tkd-bulk", lines)
        if not stream:
            self.link.write(data)
        reply = _reply(self.read_reply(deadline))
        if reply.errors or "m-load-done" not in reply.lines:
            raise self._unexpected("tkd-bulk data", list(reply.lines))

    def load_hex(self, data: bytes, command_size: int, verify: bool = False) -> None:
        """The standard path: ``db load N%`` then ``db HH…%`` chunks, one reply at a time."""
        load, *chunks = db_commands(data, command_size)
        lines = self.transact(load.decode("ascii"))
        if f"m-[Expecting {len(data)} bytes]" not in lines:
            raise self._unexpected("db load", lines)
        for number, chunk in enumerate(chunks, 1):
            reply = _reply(self.transact(chunk.decode("ascii")))
            if reply.errors or ("m-load-done" in reply.lines) != (number == len(chunks)):
                raise self._unexpected("db", list(reply.lines))
        if verify:
            echoed = self.read_back(len(data))
            if echoed != data:
                raise ProtocolError("db print differs from the input sent (corrupted on the way)")

    def read_back(self, size: int) -> bytes:
        """``db print%``: the bytes the device holds (``m-buffer-HH-HH-…`` lines)."""
        lines = self.transact("db print%", reply_bytes=size * 3 + size // 8 * 11)
        text = "".join(
            line[len("m-buffer-") :].replace("-", "")
            for line in lines
            if line.startswith("m-buffer-")
        )
        try:
            return bytes.fromhex(text)
        except ValueError:
            raise ProtocolError("db print returned something that is not hex") from None

    @staticmethod
    def _unexpected(command: str, lines: list[str]) -> Exception:
        """A clean ``e-[…]`` answer is a ``DeviceError``; anything else breaks the protocol."""
        errors = [line for line in lines if line.startswith("e-")]
        if errors and lines[-1] == READY:
            return DeviceError(f"{command}: {errors[0]}")
        return ProtocolError(f"{command}: unexpected reply {lines}")

    # ---- inference -------------------------------------------------------------
    def infer(
        self,
        *,
        num_classes: int,
        output_scale: float,
        output_zero_point: int,
        output_is_probabilities: bool,
        raw_output: bool,
        ticks: bool,
    ) -> Inference:
        """``infer 1 0%`` (plus ``tkd-output%`` and ``tkd-ticks%``, sent in the same write).

        The exact int8 outputs come from ``tkd-output``; ``m-results`` (class
        probabilities) comes from the same inference and is checked against them, so a
        corrupted digit in either is caught. Without ``tkd-output`` the int8 outputs are
        re-quantized from ``m-results``, which is exact only for a model whose own output
        is the probabilities (``BoardSession`` refuses the other case).
        """
        commands = infer_command(1, 0) + (b"tkd-output%" if raw_output else b"")
        commands += b"tkd-ticks%" if ticks else b""
        reply_bytes = 120 + num_classes * 10 + (40 + 2 * num_classes if raw_output else 0)
        deadline = self._deadline(self.timeouts.infer, len(commands) + reply_bytes + 200)
        self.link.write(commands)
        lines = self.read_reply(deadline)
        reply = _reply(lines)
        if reply.errors or "m-infer-done" not in reply.lines:
            raise self._unexpected("infer", lines)
        scores = _numbers(reply.results, num_classes, "m-results")
        try:
            laps = reply.laps_us()
        except ValueError:
            raise ProtocolError(f"infer: garbled m-lap-us line in {lines}") from None
        lap_us = laps[-1] - laps[-2] if len(laps) >= 2 else None
        if raw_output:
            lines = self.read_reply(deadline)
            output = np.asarray(
                _numbers(_reply(lines).int8_output, num_classes, "tkd-output"), dtype=np.int8
            )
            expected = reported_results(
                output, output_scale, output_zero_point, output_is_probabilities
            )
            tolerance = results_tolerance(expected, output_scale, output_is_probabilities)
            if np.any(np.abs(expected - np.asarray(scores)) > tolerance):
                raise ProtocolError("m-results and tkd-output disagree (a corrupted reply)")
        else:
            requantized = np.round(np.asarray(scores) / output_scale) + output_zero_point
            output = np.clip(requantized, -128, 127).astype(np.int8)
        tick_count = None
        if ticks:
            lines = self.read_reply(deadline)
            value = _reply(lines).values().get("ticks-per-inference", "")
            if not value.isdigit():
                raise self._unexpected("tkd-ticks", lines)
            tick_count = int(value)
        return Inference(output=output, scores=scores, ticks=tick_count, lap_us=lap_us)


def _tkd_info(lines: list[str]) -> dict[str, str]:
    """The fields of an agreed ``tkd-info`` reply; {} from a firmware without tkd- commands.

    A tinykd firmware's reply must hold every required key in its exact form: a reply that
    lacks the model hash is refused, never read as "no hash to check".
    """
    reply = _reply(lines)
    if not any(line.startswith("m-tkd-") for line in reply.lines):
        if reply.errors and lines[-1] == READY:
            return {}  # e-[Unknown command: tkd-info]: an MLPerf Tiny firmware
        raise ProtocolError(f"tkd-info: unexpected reply {lines}")
    for line in reply.lines:
        if not _TKD_LINE.fullmatch(line):
            raise ProtocolError(f"tkd-info: malformed line {line!r}")
    fields = reply.values()
    for key, form in TKD_INFO_REQUIRED.items():
        if not re.fullmatch(form, fields.get(key, "")):
            raise ProtocolError(f"tkd-info: {key} missing or malformed in {lines}")
    return fields


def _numbers(parse: Callable[[], list], count: int, what: str) -> list:
    """``parse()`` checked: ``count`` numbers, or a ``ProtocolError`` (garbled or missing)."""
    try:
        values = parse()
    except (ValueError, KeyError):
        raise ProtocolError(f"{what} missing or not numbers (a corrupted reply)") from None
    if len(values) != count:
        raise ProtocolError(f"{what} has {len(values)} values, the model has {count}")
    return values
