"""The emulated board: the real firmware core, on the host, behind a socket or a pty.

``tinykd emulate`` compiles ``firmware/core/tkd_core.c`` for the host (``HostCore``) and
puts the TFLM Python interpreter behind its inference seam, so the harness talks to the
same protocol code a board runs, over the same kind of link (``socket://`` or a pty
path). What it cannot emulate it estimates and says so:

- time: the board profile's latency model (cycles per MAC per operator) gives the cycles
  of one inference; the device clock advances by exactly that during an invoke and by
  host time while idle (so the firmware's tkd-bulk timeout still works). The tick unit is
  reported as ``est-cycles``: never mistaken for a measured cycle count. Paced (the
  default of ``tinykd emulate``), an inference also takes that long in real time, so the
  device clock never runs ahead of the host's (MLPerf Tiny's performance windows).
- memory: ``arena used`` is what the TFLM host interpreter allocates for the model, as the
  firmware reports it on a board (a host (64-bit) upper bound of a 32-bit board's); the
  arena size is the artifact's (arena policy: minimum + margin).
- the link: bytes travel no faster than the board's baud rate (8N1, ten bits a byte) in
  each direction, unless pacing is turned off.

SIGUSR1 (``request_reset``) restarts the core as a reset button would.
"""

from __future__ import annotations

import json
import os
import queue
import select
import socket
import threading
import time
import tty
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from tinykd.boards import Board
from tinykd.export import Int8Artifact, model_settings_header
from tinykd.export.arena import reported_arena
from tinykd.firmware.host_core import HostCore, InvokeInterrupted
from tinykd.io import cache_dir, write_json_atomic, write_text_atomic
from tinykd.measure.latency_model import operator_work
from tinykd.measure.tflm import TflmModel

ESTIMATED_TICK_UNIT = "est-cycles"
POLL_SECONDS = 0.02  # how often an idle device polls (the tkd-bulk timeout needs polls)
PACED_PIECE_BYTES = 16  # paced input reaches the core in pieces this small (1.4 ms at 115200)


class EstimatedClock:
    """Device time in CPU cycles: host time while idle, the latency model during invokes.

    ``frozen`` holds the clock still while the core runs, so the ticks around an invoke
    are exactly the estimate (never the Python interpreter's speed). ``realtime`` makes
    the board as slow as the one it emulates: after each invoke's estimated cycles it
    waits until host time has caught up with device time, so the device's clock never
    runs ahead of the host's (MLPerf Tiny's runner checks each performance window
    against host wall-clock time as well as against the device's m-lap-us).
    """

    unit = ESTIMATED_TICK_UNIT

    def __init__(self, ticks_per_second: int, realtime: bool = False):
        self.ticks_per_second = ticks_per_second
        self.realtime = realtime
        self._base = 0.0
        self._running_since: float | None = time.monotonic()
        self._frozen_at = 0.0  # host time when the clock last stopped
        self._advanced = 0  # ticks added since then

    def ticks(self) -> int:
        value = self._base
        if self._running_since is not None:
            value += (time.monotonic() - self._running_since) * self.ticks_per_second
        return int(value) & 0xFFFFFFFF

    def advance(self, ticks: int) -> None:
        self._base += ticks
        self._advanced += ticks
        if self.realtime and self._running_since is None:
            due = self._frozen_at + self._advanced / self.ticks_per_second
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def freeze(self) -> None:
        if self._running_since is not None:
            self._frozen_at = time.monotonic()
            self._base += (self._frozen_at - self._running_since) * self.ticks_per_second
            self._running_since = None
            self._advanced = 0

    def resume(self) -> None:
        if self._running_since is None:
            self._running_since = time.monotonic()


class TflmHostRuntime:
    """The TFLM Python interpreter behind the seam: what a board computes, on the host.

    ``arena_used`` is what ``tkd-info`` reports; by default the artifact's measured
    minimum (``tinykd.export.artifact``: the host (64-bit) figure).
    """

    def __init__(
        self, artifact: Int8Artifact, arena_size: int | None = None, arena_used: int | None = None
    ):
        self.artifact, self.arena_size, self.arena_used = artifact, arena_size, arena_used
        self.model = None

    def init(self) -> int:
        self.model = TflmModel(self.artifact, self.arena_size)
        if self.arena_used is None:
            self.arena_used = self.artifact.arena.minimum_bytes
        return 0

    def invoke(self, input_bytes: bytes) -> Sequence[int]:
        sample = np.frombuffer(input_bytes, dtype=np.int8)
        return self.model.invoke_int8(sample)


class EstimatedRuntime(TflmHostRuntime):
    """TFLM behind the firmware's inference seam; each invoke costs the estimated cycles."""

    def __init__(
        self,
        artifact: Int8Artifact,
        *,
        arena_size: int,
        arena_used: int,
        clock: EstimatedClock,
        cycles_per_inference: int,
        interrupted: Callable[[], bool] = lambda: False,
    ):
        super().__init__(artifact, arena_size, arena_used)
        self.clock, self.cycles_per_inference = clock, cycles_per_inference
        self.interrupted = interrupted

    def invoke(self, input_bytes: bytes):
        if self.interrupted():  # a reset or shutdown waits for no further inference
            raise InvokeInterrupted
        output = super().invoke(input_bytes)
        self.clock.advance(self.cycles_per_inference)
        return output


def _model_dir(artifact: Int8Artifact) -> Path:
    return cache_dir("emulator", artifact.hash)


def _arena_used(artifact: Int8Artifact) -> int:
    """What TFLM's allocator reports for the model (the firmware prints ``arena_used_bytes()``);
    cached per model."""
    cached = _model_dir(artifact) / "arena.json"
    if cached.is_file():
        return json.loads(cached.read_text(encoding="utf-8"))["arena_used"]
    used = reported_arena(artifact.tflite)
    write_json_atomic(cached, {"arena_used": used})
    return used


class EmulatedBoard:
    """One emulated device: ``boot``, ``feed`` bytes, ``request_reset`` from any thread."""

    def __init__(self, artifact: Int8Artifact, board: Board, *, realtime: bool = False):
        self.board = board
        self.work = operator_work(artifact.tflite)
        self.cycles_per_inference = round(board.estimate_cycles(self.work))
        self.arena_used, self.arena_size = _arena_used(artifact), artifact.arena.size_bytes
        settings = model_settings_header(artifact)
        settings_path = _model_dir(artifact) / "model_settings.h"
        if not settings_path.is_file() or settings_path.read_text(encoding="utf-8") != settings:
            write_text_atomic(settings_path, settings)
        self.clock = EstimatedClock(board.cpu_hz, realtime)
        self._reset = threading.Event()
        self._stop = threading.Event()
        self.runtime = EstimatedRuntime(
            artifact,
            arena_size=self.arena_size,
            arena_used=self.arena_used,
            clock=self.clock,
            cycles_per_inference=self.cycles_per_inference,
            interrupted=lambda: self._reset.is_set() or self._stop.is_set(),
        )
        self.core = HostCore(
            Path(settings_path), self.runtime, clock=self.clock, board_name=board.name
        )
        self.resets = 0

    def _run(self, action: Callable[[], bytes]) -> bytes:
        self.clock.freeze()
        try:
            return action()
        finally:
            self.clock.resume()

    def boot(self) -> bytes:
        return self._run(self.core.boot)

    def feed(self, data: bytes = b"") -> bytes:
        """Deliver received bytes (or just poll); returns what the device wrote meanwhile."""
        output = b""
        if self._reset.is_set():
            self._reset.clear()
            self.resets += 1
            output = self.boot()
        return output + self._run(lambda: self.core.feed(data))

    def request_reset(self) -> None:
        """Restart the core at its next poll (safe from a signal handler).

        A running ``infer`` ends before its next inference, as on a board whose reset
        button is pressed mid-run.
        """
        self._reset.set()

    def request_stop(self) -> None:
        """End a running ``infer`` before its next inference (SIGTERM: the process exits)."""
        self._stop.set()


# ---- the link -------------------------------------------------------------------


class _Stream:
    """One connected byte stream: ``recv`` (None when closed, b"" on timeout), ``send``."""

    def recv(self, timeout: float) -> bytes | None:
        raise NotImplementedError

    def send(self, data: bytes) -> None:
        raise NotImplementedError


class _SocketStream(_Stream):
    def __init__(self, connection: socket.socket):
        self.connection = connection
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def recv(self, timeout: float) -> bytes | None:
        ready, _, _ = select.select([self.connection], [], [], timeout)
        if not ready:
            return b""
        try:
            return self.connection.recv(65536) or None
        except OSError:
            return None

    def send(self, data: bytes) -> None:
        self.connection.sendall(data)


class _PtyStream(_Stream):
    def __init__(self, master: int):
        self.master = master

    def recv(self, timeout: float) -> bytes | None:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return b""
        try:
            return os.read(self.master, 65536)
        except OSError:  # no process has the other side open: not an end for a pty
            time.sleep(timeout)
            return b""

    def send(self, data: bytes) -> None:
        os.write(self.master, data)


class PacedLink:
    """A serial line of ``baud`` (None: unpaced) between a stream and the board.

    A reader thread timestamps when each received chunk would have finished arriving at
    the line's byte rate; the board gets it only then. Output leaves no faster either.
    """

    def __init__(self, stream: _Stream, baud: int | None):
        self.stream = stream
        self.byte_seconds = 10.0 / baud if baud else 0.0
        self.received: queue.Queue = queue.Queue()
        self.outgoing: queue.Queue = queue.Queue()
        self._receive_clock = 0.0
        self._send_clock = 0.0
        self.closed = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._write, daemon=True).start()

    def _read(self) -> None:
        while not self.closed.is_set():
            data = self.stream.recv(0.1)
            if data is None:
                self.closed.set()
                self.received.put(None)
                return
            # Paced, a chunk is handed over in small pieces, each when it has arrived, so
            # the device answers a command while the bytes behind it are still on the wire.
            piece = PACED_PIECE_BYTES if self.byte_seconds else len(data) or 1
            for start in range(0, len(data), piece):
                part = data[start : start + piece]
                self._receive_clock = (
                    max(self._receive_clock, time.monotonic()) + len(part) * self.byte_seconds
                )
                self.received.put((self._receive_clock, part))

    def _write(self) -> None:
        while True:
            item = self.outgoing.get()
            if item is None:
                return
            due, data = item
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            try:
                self.stream.send(data)
            except OSError:
                self.closed.set()

    def take(self, timeout: float) -> bytes | None:
        """The next received chunk once it has fully arrived; b"" after ``timeout``; None: closed."""
        try:
            item = self.received.get(timeout=timeout)
        except queue.Empty:
            return b""
        if item is None:
            return None
        due, data = item
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        return data

    def send(self, data: bytes) -> None:
        if data:
            self._send_clock = (
                max(self._send_clock, time.monotonic()) + len(data) * self.byte_seconds
            )
            self.outgoing.put((self._send_clock, data))

    def close(self) -> None:
        self.closed.set()
        self.outgoing.put(None)


def serve_stream(
    board: EmulatedBoard,
    stream: _Stream,
    baud: int | None,
    pending: bytes,
    stop: threading.Event,
) -> None:
    """Run the board on one connection until the other side closes it (or ``stop``)."""
    link = PacedLink(stream, baud)
    link.send(pending)
    try:
        while not link.closed.is_set() and not stop.is_set():
            data = link.take(POLL_SECONDS)
            if data is None:
                return
            link.send(board.feed(data))
    finally:
        link.close()


def serve_socket(
    board: EmulatedBoard,
    host: str,
    port: int,
    baud: int | None,
    announce: Callable[[str], None],
    stop: threading.Event | None = None,
) -> None:
    """Listen on ``host:port`` (0: any free port); one client at a time, forever.

    The boot banner waits for the first client (as QEMU's ``wait=on`` does); a client that
    disconnects leaves the board running, as closing a serial monitor does.
    """
    stop = stop or threading.Event()
    with socket.create_server((host, port)) as listener:
        listener.settimeout(0.2)
        announce(f"socket://{host}:{listener.getsockname()[1]}")
        pending = board.boot()
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                pending += board.feed()  # keep polling: resets and the clock go on
                continue
            with connection:
                serve_stream(board, _SocketStream(connection), baud, pending, stop)
            pending = b""


def serve_pty(
    board: EmulatedBoard,
    baud: int | None,
    announce: Callable[[str], None],
    stop: threading.Event,
) -> None:
    """A pseudo-terminal: the harness opens the announced path like a serial port."""
    master, slave = os.openpty()
    tty.setraw(slave)
    tty.setraw(master)
    announce(os.ttyname(slave))
    try:
        serve_stream(board, _PtyStream(master), baud, board.boot(), stop)
    finally:
        os.close(master)
        os.close(slave)


ANNOUNCEMENT = "listening on "
